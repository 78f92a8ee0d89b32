//! The one HTTP client the query helpers share, and JSON GETs with errors
//! that name the URL.

use crate::error::Error;
use std::time::Duration;

/// A plain-HTTP client (every engine is on 127.0.0.1).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// GETs `url` with `query` and parses the JSON body; a non-2xx answer is an
/// error carrying the body.
pub(crate) async fn get_json(
    client: &reqwest::Client,
    url: &str,
    query: &[(&str, &str)],
) -> Result<serde_json::Value, Error> {
    let api = |reason: String| Error::Api {
        url: url.to_owned(),
        reason,
    };
    let res = client
        .get(url)
        .query(query)
        .send()
        .await
        .map_err(|e| api(e.to_string()))?;
    let status = res.status();
    let body = res.text().await.map_err(|e| api(e.to_string()))?;
    if !status.is_success() {
        return Err(api(format!("{status}: {body}")));
    }
    serde_json::from_str(&body).map_err(|e| api(format!("not JSON ({e}): {body}")))
}

/// POSTs a form and returns the body text; a non-2xx answer is an error.
pub(crate) async fn post_form(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<String, Error> {
    let api = |reason: String| Error::Api {
        url: url.to_owned(),
        reason,
    };
    let res = client
        .post(url)
        .query(form)
        .send()
        .await
        .map_err(|e| api(e.to_string()))?;
    let status = res.status();
    let body = res.text().await.map_err(|e| api(e.to_string()))?;
    if !status.is_success() {
        return Err(api(format!("{status}: {body}")));
    }
    Ok(body)
}
