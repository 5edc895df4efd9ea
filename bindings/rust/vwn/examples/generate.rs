//! Loads a model and streams a greedy (or sampled) continuation of a prompt to stdout; timing goes
//! to stderr, like `vwn run`.
//!
//!     cargo run --release --example generate -- MODEL.gguf "Once upon a time" [-n 64]
//!         [--temp 0.8] [--seed 1] [--spec K|auto] [-t THREADS] [--repeat R]
//!
//! With --repeat R the generation runs R times (the context cleared in between) and the mean speed
//! is reported: the numbers the README's overhead measurement uses.
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use vwn::{ContextParams, GenerateParams, Model, Sampler, SamplerParams};

const USAGE: &str =
    "usage: generate MODEL.gguf PROMPT [-n N] [--temp T] [--seed S] [--spec K|auto] [-t THREADS] [--repeat R]";

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or(USAGE)?;
    let prompt = args.next().ok_or(USAGE)?;
    let (mut n_predict, mut temp, mut seed, mut spec, mut threads, mut repeat) = (64, 0.0f32, 0u64, 0, 0, 1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(USAGE)?;
        match flag.as_str() {
            "-n" => n_predict = value.parse()?,
            "--temp" => temp = value.parse()?,
            "--seed" => seed = value.parse()?,
            "--spec" => spec = if value == "auto" { -1 } else { value.parse()? },
            "-t" => threads = value.parse()?,
            "--repeat" => repeat = value.parse()?,
            _ => return Err(USAGE.into()),
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
    let (mut tokens, mut lib_us, mut wall) = (0i64, 0f64, Duration::ZERO);
    for r in 0..repeat {
        ctx.clear()?;
        sampler.reset()?;
        out.write_all(prompt.as_bytes())?;
        let start = Instant::now();
        let stats = ctx.generate_with(&prompt, &gparams, Some(&mut sampler), |piece| {
            out.write_all(piece.bytes).and_then(|_| out.flush()).is_ok() // stop if stdout went away
        })?;
        wall += start.elapsed();
        out.write_all(b"\n")?;
        tokens += stats.n_generated as i64;
        lib_us += stats.t_generate_us;
        if r == 0 {
            eprintln!(
                "prompt: {} tokens in {:.2} ms; stopped by {:?}",
                stats.n_prompt,
                stats.t_prompt_us / 1e3,
                stats.stop_reason
            );
            if spec != 0 {
                eprintln!(
                    "speculative: {} drafted, {} accepted in {} verify steps",
                    stats.n_drafted, stats.n_accepted, stats.n_verify
                );
            }
        }
    }
    eprintln!(
        "generated: {} tokens in {:.2} ms = {:.2} tok/s (library time, {} run(s)); {:.2} tok/s wall time around generate_with",
        tokens,
        lib_us / 1e3,
        tokens as f64 * 1e6 / lib_us,
        repeat,
        tokens as f64 / wall.as_secs_f64()
    );
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
