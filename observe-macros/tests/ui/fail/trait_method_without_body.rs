use observe::observed;

trait Bank {
    #[observed]
    fn charge(&self) -> Result<(), std::io::Error>;
}

fn main() {}
