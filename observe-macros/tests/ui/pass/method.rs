//! Methods taking `&self`, `&mut self`, `self` and `self: Box<Self>`,
//! returning borrows of `self`.
use observe::observed;

struct Cart {
    items: Vec<String>,
}

impl Cart {
    #[observed]
    fn first(&self) -> Option<&str> {
        self.items.first().map(String::as_str)
    }

    #[observed]
    fn add(&mut self, item: &str) -> &mut Self {
        self.items.push(item.to_owned());
        self
    }

    #[observed]
    fn into_items(self) -> Vec<String> {
        self.items
    }

    #[observed]
    fn boxed(self: Box<Self>) -> usize {
        self.items.len()
    }

    #[observed(fields(items = self.items.len()))]
    async fn checkout(&mut self) -> Result<usize, std::io::Error> {
        let n = self.items.len();
        self.items.clear();
        Ok(n)
    }
}

trait Priced {
    fn price(&self) -> u64;

    #[observed]
    fn price_with_tax(&self) -> u64 {
        self.price() * 120 / 100
    }
}

impl Priced for Cart {
    #[observed]
    fn price(&self) -> u64 {
        self.items.len() as u64 * 100
    }
}

/// A trait with a native `async fn` (no `#[async_trait]`).
trait Store {
    async fn load(&self, key: &str) -> Result<Option<String>, std::io::Error>;
}

impl Store for Cart {
    #[observed(fields(key))]
    async fn load(&self, key: &str) -> Result<Option<String>, std::io::Error> {
        Ok(self.items.iter().find(|i| *i == key).cloned())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut cart = Cart { items: Vec::new() };
    cart.add("apple").add("pear");
    assert_eq!(cart.first(), Some("apple"));
    assert_eq!(cart.price_with_tax(), 240);
    assert_eq!(cart.checkout().await.ok(), Some(2));
    cart.add("fig");
    assert_eq!(
        cart.load("fig").await.ok().flatten().as_deref(),
        Some("fig")
    );
    assert_eq!(
        Box::new(Cart {
            items: vec![String::new()]
        })
        .boxed(),
        1
    );
    assert_eq!(cart.into_items(), ["fig"]);
}
