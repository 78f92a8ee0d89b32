//! Associated functions (no `self`), sync and async, returning `Self`.
use observe::observed;

#[derive(Debug, PartialEq)]
struct Client {
    url: String,
}

impl Client {
    #[observed]
    pub fn new(url: &str) -> Self {
        Client {
            url: url.to_owned(),
        }
    }

    #[observed(name = "client.connect")]
    pub async fn connect(url: &str) -> Result<Self, std::io::Error> {
        Ok(Self::new(url))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let c = Client::connect("http://bank").await.expect("connects");
    assert_eq!(c, Client::new("http://bank"));
    assert_eq!(c.url, "http://bank");
}
