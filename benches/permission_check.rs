//! What a permission check adds to an API request: authenticating the bearer token and
//! deciding the caller's role in the organization of the path, as every `/api/v1/` route
//! does before its work.
//!
//! Why: the check runs on every request, so it must cost next to nothing beside the
//! request itself; this says how much, on a directory as large as a busy daemon's.
//!
//! A real file store in a temporary directory holds a directory of `DEEPLO_BENCH_USERS`
//! (default 1,000) users, each a member of 3 of 50 organizations, with 2 tokens each. Each
//! round takes one of the tokens and runs, in turns:
//! - `check`: [`Directory::authenticate`] then [`authorize`] for a read of one of the
//!   user's organizations, as the API's gate does (the use of a token is written down once a
//!   minute; the warm-up has done that, as a busy daemon has);
//! - `baseline`: the SHA-256 of the token, the least that any scheme keeping tokens hashed
//!   must do per request.
//!
//! `DEEPLO_BENCH_RUNS` (default 200,000) rounds each after a warm-up; the report gives the
//! median and the 99th percentile of each, and check minus baseline. The figures also go to
//! `<target dir>/bench/permission_check.json`.
//!
//! Measured on a 2-core machine (release, 1,000 users, 200,000 runs): check 935 ns at the
//! median (1,183 ns p99), baseline 329 ns (390 ns): a permission check adds under 1 µs to
//! a request, 0.6 µs more than hashing the token.
//!
//! `cargo bench -p deeplo-testbed --bench permission_check`.

#[path = "shared/build.rs"]
#[allow(dead_code)] // this bench runs no binary of its own
mod build;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use deeplo_core::access::{Action, Directory, Email, NewToken, OrgName, Role, authorize};
use deeplo_core::{FileStore, Store, TokenHash};
use serde_json::json;

const ORGS: usize = 50;
const ORGS_PER_USER: usize = 3;
const TOKENS_PER_USER: usize = 2;
const WARMUP: usize = 10_000;

fn main() -> anyhow::Result<()> {
    let users = build::env_number("DEEPLO_BENCH_USERS", 1_000)?.max(1);
    let runs = build::env_number("DEEPLO_BENCH_RUNS", 200_000)?.max(1);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let tmp = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(FileStore::open(tmp.path(), jiff::Timestamp::now())?);
    let directory = Directory::new(store);
    let now = jiff::Timestamp::now();
    eprintln!("a directory of {users} users in {ORGS} organizations, {TOKENS_PER_USER} tokens each");
    let tokens = rt.block_on(async {
        let mut tokens = Vec::new();
        for u in 0..users {
            let email = Email::new(&format!("user{u}@example.com"))?;
            let mut orgs = Vec::new();
            for k in 0..ORGS_PER_USER {
                let org = OrgName::new(format!("org-{}", (u + k * 17) % ORGS))?;
                directory.set_member(&email, &org, Role::ALL[(u + k) % 4], now).await?;
                orgs.push(org);
            }
            for _ in 0..TOKENS_PER_USER {
                let new =
                    NewToken { user: email.clone(), name: "bench".into(), expires_at: None, org: None, max_role: None };
                let (token, _) = directory.create_token(&new, now).await?;
                tokens.push((token.secret().expose().to_owned(), orgs[0].clone()));
            }
        }
        anyhow::Ok(tokens)
    })?;

    let check = |i: usize| {
        let (token, org) = &tokens[i % tokens.len()];
        rt.block_on(async {
            let caller = directory.authenticate(token, now).await?;
            let Ok(caller) = caller else { bail!("a bench token was refused") };
            let allowed = authorize(&directory, &caller, org, Action::ReadDeployments).await?;
            anyhow::Ok(allowed.is_ok())
        })
    };
    let baseline = |i: usize| {
        let (token, _) = &tokens[i % tokens.len()];
        TokenHash::of(token).as_hex().len() == 64
    };
    for i in 0..WARMUP {
        black_box(check(i)?);
        black_box(baseline(i));
    }
    let (mut checks, mut bases) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for i in 0..runs {
        let clock = Instant::now();
        let allowed = black_box(check(i)?);
        checks.push(clock.elapsed().as_nanos() as f64);
        let clock = Instant::now();
        black_box(baseline(i));
        bases.push(clock.elapsed().as_nanos() as f64);
        if !allowed {
            bail!("a member was refused a read of their own organization");
        }
    }
    let (c50, c99, b50, b99) = (build::median(&checks), p99(&checks), build::median(&bases), p99(&bases));
    println!(
        "\none permission check (authenticate the token, decide the role), {users} users, {runs} runs (bench profile: {})",
        build::bench_profile()?
    );
    println!("{:>9} {:>10} {:>10}", "", "median", "p99");
    println!("{:>9} {c50:>7.0} ns {c99:>7.0} ns", "check");
    println!("{:>9} {b50:>7.0} ns {b99:>7.0} ns", "baseline");
    println!("check - baseline: {:.0} ns at the median", c50 - b50);
    let json = json!({
        "users": users, "runs": runs,
        "check_median_ns": c50, "check_p99_ns": c99,
        "baseline_median_ns": b50, "baseline_p99_ns": b99,
    });
    build::write_json("permission_check", &json)
}

fn p99(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}
