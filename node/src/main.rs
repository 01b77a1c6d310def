//! `passerelle`: the node binary.
fn main() {
    println!("passerelle {}", env!("CARGO_PKG_VERSION"));
}
