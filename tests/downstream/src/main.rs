//! Builds a ResNet-18, saves its weights as a safetensors file the way a PyTorch user's
//! `save_file(model.state_dict())` would hold them, loads that file strictly into a fresh
//! model through zoo-import, and checks both give the same logits on NdArray.

use burn::tensor::{Distribution, Tensor, Tolerance};
use model_zoo::{Architecture, Backend};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Backend::NdArray.device()?;
    let model = model_zoo::create("resnet18", 10, &device)?;
    let dir = std::env::temp_dir().join(format!("zoo-downstream-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("resnet18.safetensors");
    zoo_import::save_safetensors(&model, &file)?;

    let (loaded, report) =
        zoo_import::Import::new(&file).load_into(model_zoo::create("resnet18", 10, &device)?)?;
    let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
    let want = model.try_forward(x.clone())?;
    let got = loaded.try_forward(x)?;
    got.clone()
        .into_data()
        .assert_approx_eq::<f32>(&want.into_data(), Tolerance::absolute(1e-5));
    println!("{report}");
    println!(
        "resnet18 from {}: logits {:?}, equal to the saved model's",
        file.display(),
        got.dims()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
