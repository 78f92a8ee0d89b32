use observe::observed;

#[observed]
fn serve_forever() -> ! {
    loop {
        std::thread::park();
    }
}

fn main() {}
