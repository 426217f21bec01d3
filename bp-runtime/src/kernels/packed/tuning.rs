//! Which kernels the product runs on this CPU, chosen once per process: the instruction
//! set ([`best_isa`]) and, on AVX-512, the tile ([`Tile`]).
//!
//! A CPU bp was measured on gets the tile its measurement chose (`TABLE`, and
//! `bp-runtime/GEMM.md` for the figures). Any other AVX-512 CPU (a new family, another
//! vendor) times both tiles once, at the first product, on five small products shaped
//! like a network's (a dense layer's three, a convolution's, a recurrent step's; about
//! 5 ms in all) and keeps the 6×64 tile only when it is at least 3 % faster (the 12×32
//! is the measured default; a tie is noise): a CPU we have not seen does not silently
//! run a tile tuned for another. `BP_GEMM_TILE=12x32`, `6x64` (the `f32` names; `f64`
//! tiles have half the columns) or `tune` overrides both. The tiles do the same
//! multiply-adds in the same order, so the choice — even a tuning run that goes the other
//! way on a noisy machine — never changes a result's bits.
#![forbid(unsafe_code)]

use super::dispatch::gemm_f32;
use super::isa::{best_isa, Isa, Kernels, Tile};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The CPUs measured, by vendor and family (and model range), with the tile that won on
/// them and what was measured.
const TABLE: &[(&str, u32, std::ops::RangeInclusive<u32>, Tile, &str)] = &[(
    "AuthenticAMD",
    0x19,
    0x10..=0x1f,
    Tile::Tall,
    "AMD Zen 4 (family 25, models 16-31): measured, GEMM.md",
)];

/// The kernels chosen for this process, and why.
struct Choice {
    kernels: Kernels,
    why: String,
}

static CHOICE: OnceLock<Choice> = OnceLock::new();

/// The kernels products run in this process (chosen at the first call).
pub(crate) fn kernels() -> Kernels {
    CHOICE.get_or_init(choose).kernels
}

/// Which GEMM kernels this process runs and why, e.g. `avx512, tile 12x32 (AMD Zen 4 …)`; the
/// benchmarks print it with their results.
pub fn describe() -> String {
    let c = CHOICE.get_or_init(choose);
    format!("{}, {}", name(c.kernels), c.why)
}

/// The name of a choice of kernels.
fn name(k: Kernels) -> &'static str {
    match (k.isa, k.tile) {
        (Isa::Baseline, _) => "baseline 4x8",
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, _) => "avx2 6x16",
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, Tile::Tall) => "avx512 12x32",
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, Tile::Wide) => "avx512 6x64",
    }
}

/// The vendor string, family and model of this CPU (`cpuid` leaves 0 and 1, with the
/// extended family and model as the vendors define them).
#[cfg(target_arch = "x86_64")]
fn cpu() -> (String, u32, u32) {
    use std::arch::x86_64::__cpuid;
    let v = __cpuid(0);
    let vendor: Vec<u8> = [v.ebx, v.edx, v.ecx]
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .collect();
    let eax = __cpuid(1).eax;
    let (base_family, base_model) = ((eax >> 8) & 0xf, (eax >> 4) & 0xf);
    let family = if base_family == 0xf {
        base_family + ((eax >> 20) & 0xff)
    } else {
        base_family
    };
    let model = if base_family == 0x6 || base_family == 0xf {
        (((eax >> 16) & 0xf) << 4) | base_model
    } else {
        base_model
    };
    (String::from_utf8_lossy(&vendor).into_owned(), family, model)
}

fn choose() -> Choice {
    let isa = best_isa();
    let single = |why: &str| Choice {
        kernels: Kernels::of(isa),
        why: why.to_string(),
    };
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        let forced = std::env::var("BP_GEMM_TILE").ok();
        let with = |tile, why: String| Choice {
            kernels: Kernels { isa, tile },
            why,
        };
        match forced.as_deref().map(str::trim) {
            Some("12x32") => return with(Tile::Tall, "BP_GEMM_TILE".into()),
            Some("6x64") => return with(Tile::Wide, "BP_GEMM_TILE".into()),
            Some("tune") => return tuned(isa, "BP_GEMM_TILE=tune"),
            _ => {}
        }
        let (vendor, family, model) = cpu();
        let known = TABLE
            .iter()
            .find(|(v, f, m, _, _)| *v == vendor && *f == family && m.contains(&model));
        let ignored = match forced {
            Some(f) => format!("; BP_GEMM_TILE={f:?} is not 12x32, 6x64 or tune: ignored"),
            None => String::new(),
        };
        return match known {
            Some(&(_, _, _, tile, why)) => with(tile, format!("{why}{ignored}")),
            None => {
                let cpu = format!("{vendor} family {family} model {model}, not measured");
                let mut c = tuned(isa, &cpu);
                c.why.push_str(&ignored);
                c
            }
        };
    }
    single("the only tile for this instruction set")
}

/// Times both AVX-512 tiles on a network's kinds of product and keeps the faster.
fn tuned(isa: Isa, context: &str) -> Choice {
    let tiles = [Tile::Tall, Tile::Wide];
    let mut best = [Duration::MAX; 2];
    // (m, n, k, A's strides, B's strides): the forward x·Wᵀ (NT), input gradient dy·W
    // (NN) and weight gradient dyᵀ·x (TN) of a 512 → 256 dense layer at batch 96; a
    // convolution's product (16 channels, 24×24 pixels, 6·5·5 deep); a recurrent step's
    // hidden product (batch 32, 128 → 4·128). About 50 M multiply-adds in all.
    type Product = ((usize, usize, usize), [usize; 2], [usize; 2]);
    let products: [Product; 5] = [
        ((96, 256, 512), [512, 1], [1, 512]),
        ((96, 256, 512), [512, 1], [256, 1]),
        ((96, 256, 512), [1, 96], [256, 1]),
        ((16, 576, 150), [150, 1], [576, 1]),
        ((32, 512, 128), [128, 1], [1, 128]),
    ];
    let a: Vec<f32> = (0..96 * 512).map(|i| (i % 7) as f32 * 0.25 - 0.5).collect();
    let b: Vec<f32> = (0..512 * 576)
        .map(|i| (i % 5) as f32 * 0.125 - 0.25)
        .collect();
    let mut c = vec![0.0f32; 96 * 576];
    for _round in 0..3 {
        for (t, &tile) in tiles.iter().enumerate() {
            let kernels = Kernels { isa, tile };
            let start = Instant::now();
            for &((m, n, k), sa, sb) in &products {
                gemm_f32(kernels, (m, n, k), 1.0, &a, sa, &b, sb, 0.0, &mut c, [n, 1]);
            }
            best[t] = best[t].min(start.elapsed());
        }
    }
    let t = usize::from(best[1].as_secs_f64() < 0.97 * best[0].as_secs_f64());
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Choice {
        kernels: Kernels {
            isa,
            tile: tiles[t],
        },
        why: format!(
            "{context}: tuned at first use (12x32 {:.0} us, 6x64 {:.0} us)",
            us(best[0]),
            us(best[1])
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_choice_runs_on_this_cpu_and_says_why() {
        let k = kernels();
        assert_eq!(k.isa, best_isa());
        let text = describe();
        assert!(text.starts_with(name(k)), "{text}");
        assert!(text.len() > name(k).len() + 5, "{text}");
    }

    #[test]
    fn tuning_picks_one_of_the_tiles_and_reports_both_times() {
        if best_isa() != Isa::Baseline {
            let c = tuned(best_isa(), "test");
            assert_eq!(c.kernels.isa, best_isa());
            assert!(
                c.why.contains("12x32") && c.why.contains("6x64"),
                "{}",
                c.why
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn cpuid_reads_a_vendor_and_family() {
        let (vendor, family, _) = cpu();
        assert_eq!(vendor.len(), 12, "{vendor:?}");
        assert!(family >= 6, "family {family}");
    }
}
