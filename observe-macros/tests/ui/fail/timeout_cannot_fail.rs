use observe::observed;

#[observed(timeout = "30s")]
async fn refresh_cache() {}

fn main() {}
