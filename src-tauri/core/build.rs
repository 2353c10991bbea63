// The built UI (ui/dist) is embedded in release builds: rebuild when it changes.
fn main() {
    println!("cargo:rerun-if-changed=../../ui/dist");
}
