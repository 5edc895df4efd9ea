//! Shared helpers of the integration tests: where the test model and the C CLI's reference outputs
//! are (environment), and a tiny .npy reader.
#![allow(dead_code)]
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// Prints a skip note once per test binary, straight to stderr (not captured by the harness).
fn skip_note(once: &'static Once, what: &'static str) {
    once.call_once(|| {
        let _ = writeln!(std::io::stderr(), "SKIPPED: {what} is not set; the tests that need it pass without checking anything (scripts/test_bindings.sh sets it)");
    });
}

/// The model under test: $VWN_TEST_MODEL. `None` (and a note on stderr) when unset, so that a
/// plain `cargo test` without the test script skips instead of failing.
pub fn model_path() -> Option<PathBuf> {
    match std::env::var_os("VWN_TEST_MODEL") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            {
                static ONCE: Once = Once::new();
                skip_note(&ONCE, "VWN_TEST_MODEL")
            }
            None
        }
    }
}

/// The directory of reference outputs written by scripts/test_bindings.sh with the C CLI:
/// $VWN_TEST_REF. `None` (and a note) when unset.
pub fn ref_dir() -> Option<PathBuf> {
    match std::env::var_os("VWN_TEST_REF") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            {
                static ONCE: Once = Once::new();
                skip_note(&ONCE, "VWN_TEST_REF")
            }
            None
        }
    }
}

/// models/demo.gguf of the source tree (a trained model with Q8_0 matrices and head size 32, which
/// the q8_0 KV cache needs; the test model of scripts/test_bindings.sh has head size 4). `None`
/// (and a note on stderr) when it is not there.
pub fn demo_path() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../models/demo.gguf");
    if p.is_file() {
        Some(p)
    } else {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {} is not there; the tests that need it pass without checking anything",
                p.display()
            );
        });
        None
    }
}

pub fn read_ref(dir: &Path, name: &str) -> Vec<u8> {
    fs::read(dir.join(name))
        .unwrap_or_else(|e| panic!("cannot read reference {}: {e}", dir.join(name).display()))
}

pub fn read_ref_str(dir: &Path, name: &str) -> String {
    String::from_utf8(read_ref(dir, name)).expect("reference is not UTF-8")
}

/// Parses "1,2,3" or "1 2 3" (any mix of commas and whitespace) into ids.
pub fn parse_ids(s: &str) -> Vec<i32> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().unwrap_or_else(|_| panic!("bad token id '{t}'")))
        .collect()
}

/// A float32 little-endian .npy array: its shape and data.
pub struct Npy {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Reads a version 1/2/3 .npy file holding '<f4' data in C order.
pub fn read_npy(bytes: &[u8]) -> Npy {
    assert!(bytes.len() >= 10 && &bytes[..6] == b"\x93NUMPY", "not a .npy file");
    let major = bytes[6];
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => panic!("unsupported .npy version {v}"),
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).expect("header not text");
    let field = |key: &str| -> &str {
        let at =
            header.find(&format!("'{key}'")).unwrap_or_else(|| panic!("no '{key}' in .npy header {header}"));
        let rest = &header[at + key.len() + 2..];
        rest[rest.find(':').unwrap() + 1..].trim_start()
    };
    let descr = field("descr");
    assert!(descr.starts_with("'<f4'"), "expected '<f4' data, header {header}");
    assert!(field("fortran_order").starts_with("False"), "Fortran order not supported");
    let shape_txt = field("shape");
    let shape_txt = &shape_txt[1..shape_txt.find(')').unwrap()];
    let shape: Vec<usize> =
        shape_txt.split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| t.parse().unwrap()).collect();
    let n: usize = shape.iter().product();
    let body = &bytes[start + hlen..];
    assert_eq!(body.len(), n * 4, ".npy body size does not match its shape {shape:?}");
    let data = body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Npy { shape, data }
}
