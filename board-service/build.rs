//! `sqlx::migrate!` embeds `../migrations` at compile time; rebuild when a
//! migration is added, or a stale binary would refuse the database.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
