//! The query service's parameters (`from`, `to`, `max_points`, `tier`) as a query string:
//! any input is either refused or gives a range within the bounds and a series plan whose
//! aligned buckets never number more than the budget allows (the budget holds for every
//! range the API accepts).
#![no_main]

use libfuzzer_sys::fuzz_target;
use velometry_query::api::range::{EARLIEST, LATEST};
use velometry_query::api::series::plan;
use velometry_query::api::Params;
use velometry_query::rollup::TIERS;

fuzz_target!(|data: &[u8]| {
    let Ok(params) = serde_urlencoded::from_bytes::<Params>(data) else { return };
    let Ok(range) = params.range(std::time::Duration::from_secs(3_600)) else { return };
    assert!(EARLIEST <= range.from() && range.from() < range.to() && range.to() <= LATEST);
    let Ok(max_points) = params.max_points(1_000, 10) else { return };
    let forced = match params.get("tier") {
        None | Some("auto") => None,
        Some("raw") => Some(None),
        Some(name) => match TIERS.iter().find(|t| t.name == name) {
            Some(tier) => Some(Some(*tier)),
            None => return,
        },
    };
    // M4 spends four points a bucket; LTTB and means one.
    for buckets in [(max_points / 4) as i64, max_points as i64] {
        let Ok(plan) = plan(range, buckets, forced) else { continue };
        assert!(plan.bucket > 0, "{plan:?}");
        let first = range.from().div_euclid(plan.bucket);
        let last = (range.to() - 1).div_euclid(plan.bucket);
        assert!(last - first < buckets, "{} buckets for a budget of {buckets}: {plan:?}", last - first + 1);
        if let Some(tier) = plan.tier {
            assert_eq!(plan.bucket % tier.width, 0, "the tier's windows tile the buckets");
        }
    }
});
