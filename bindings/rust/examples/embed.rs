//! Embeds texts and prints each one's dot product with the first (the cosine similarity when
//! the model normalizes, as all-MiniLM-L6-v2 does).
//!
//!     cargo run --example embed -- ~/.cache/sembed/models/all-MiniLM-L6-v2 \
//!         "A man is eating." "A man eats bread." "A cat sleeps."

use sembed::{Model, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, texts @ ..] = args.as_slice() else {
        eprintln!("usage: embed MODEL_DIR TEXT [TEXT...]");
        std::process::exit(2);
    };
    if texts.is_empty() {
        eprintln!("usage: embed MODEL_DIR TEXT [TEXT...]");
        std::process::exit(2);
    }
    let mut model = Model::open(dir, &Options::default())?;
    let vectors = model.encode(texts)?;
    println!("sembed {}, {} dimensions", sembed::version(), model.dim());
    for (text, v) in texts.iter().zip(&vectors) {
        let dot: f32 = vectors[0].iter().zip(v).map(|(a, b)| a * b).sum();
        println!("{dot:.4}  {text}");
    }
    Ok(())
}
