//! Loads a model and streams a greedy (or sampled) continuation of a prompt to stdout.
//!
//!     cargo run --release --example generate -- MODEL.gguf "Once upon a time" [-n 64]
//!         [--temp 0.8] [--seed 1] [--spec K|auto] [-t THREADS]
//!
//! Timing goes to stderr, like `vwn run`.
use std::io::Write;
use std::process::ExitCode;

use vwn::{ContextParams, GenerateParams, Model, Sampler, SamplerParams};

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: generate MODEL.gguf PROMPT [-n N] [--temp T] [--seed S] [--spec K|auto] [-t THREADS]";
    let path = args.next().ok_or(usage)?;
    let prompt = args.next().ok_or(usage)?;
    let (mut n_predict, mut temp, mut seed, mut spec, mut threads) = (64, 0.0f32, 0u64, 0, 0);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(usage)?;
        match flag.as_str() {
            "-n" => n_predict = value.parse()?,
            "--temp" => temp = value.parse()?,
            "--seed" => seed = value.parse()?,
            "--spec" => spec = if value == "auto" { -1 } else { value.parse()? },
            "-t" => threads = value.parse()?,
            _ => return Err(usage.into()),
        }
    }

    let model = Model::load(&path)?;
    let info = model.info();
    eprintln!(
        "libvwn {}: V={} D={} L={} GHC m={} n={} mtp={}",
        vwn::version(),
        info.n_vocab,
        info.n_embd,
        info.n_layer,
        info.ghc_m,
        info.ghc_n,
        info.mtp_depth
    );
    let cparams = ContextParams { n_threads: threads, mtp: spec != 0, ..Default::default() };
    let mut ctx = model.new_context(&cparams)?;
    let mut sampler = Sampler::new(&SamplerParams { temperature: temp, seed, ..Default::default() })?;
    let gparams = GenerateParams { n_predict, spec_depth: spec, ..Default::default() };

    let mut out = std::io::stdout().lock();
    out.write_all(prompt.as_bytes())?;
    let stats = ctx.generate_with(&prompt, &gparams, Some(&mut sampler), |piece| {
        out.write_all(piece.bytes).and_then(|_| out.flush()).is_ok() // stop if stdout went away
    })?;
    eprintln!(
        "\n\nprompt: {} tokens in {:.2} ms; generated: {} tokens in {:.2} ms = {:.2} tok/s ({:?})",
        stats.n_prompt,
        stats.t_prompt_us / 1e3,
        stats.n_generated,
        stats.t_generate_us / 1e3,
        stats.tokens_per_second(),
        stats.stop_reason
    );
    if spec != 0 {
        eprintln!(
            "speculative: {} drafted, {} accepted in {} verify steps",
            stats.n_drafted, stats.n_accepted, stats.n_verify
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
