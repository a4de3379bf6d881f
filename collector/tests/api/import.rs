//! Damaged ride files through the real `collector import` into a running collector: a FIT
//! file cut short gives the ride up to the cut and says what was lost; an oddity that loses
//! nothing prints nothing; what is not FIT is still refused.

use velometry_collector::import::files::read_bytes;
use velometry_core::time::{format_rfc3339, now_nanos};

use crate::helpers::*;

/// Runs `collector import` of `file` with `token`; returns (success, stdout, stderr).
async fn import(env: &Env, token: &str, file: &std::path::Path) -> (bool, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_collector"))
        .args(["import", "--target", &env.collector.url, "--token", token])
        .arg(file)
        .output()
        .await
        .expect("the collector binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_fit_file_cut_short_is_imported_up_to_the_cut_with_what_was_lost() {
    let Some(dir) = velometry_core::testkit::rides("fit") else { return };
    let whole = std::fs::read(dir.join("short-power-session.fit")).expect("a shared ride");
    let env = Env::start(&[]).await;
    let temp = tempfile::tempdir().expect("tempdir");
    // Each cut as another device, so that what each import stored can be counted apart.
    let cuts = [
        (whole.len() / 4, ALICE_EDGE, "alice", "edge530"),
        (whole.len() / 2, ALICE_PHONE, "alice", "phone"),
        (whole.len() - 3, BOB_PHONE, "bob", "phone"),
    ];
    for (cut, token, rider, device) in cuts {
        let path = temp.path().join(format!("crashed-{cut}.fit"));
        std::fs::write(&path, &whole[..cut]).expect("write the cut file");
        let expected = read_bytes("cut.fit", &whole[..cut], now_nanos()).expect("read up to the cut");
        let damage = expected.damage.expect("a cut file is damaged");
        let last = damage.last_time.expect("records before the cut");

        let (ok, stdout, stderr) = import(&env, token, &path).await;
        assert!(ok, "a cut file is imported: {stdout}\n{stderr}");
        let warning = format!(
            "warning: {}: truncated at byte {} of the {} its header promises: {} bytes are lost, the ride after {}",
            path.display(),
            damage.at,
            whole.len(),
            whole.len() - damage.at,
            format_rfc3339(last)
        );
        assert!(stderr.contains(&warning), "expected {warning:?} in {stderr}");
        assert!(stdout.contains(&format!("{} readings written", expected.readings.len())), "{stdout}");

        let hr = expected.readings.iter().filter(|r| r.float("bpm").is_some()).count();
        let q = format!("SELECT bpm FROM heart_rate WHERE rider = '{rider}' AND device = '{device}'");
        let rows = env.wait_rows(&q, hr).await;
        assert_eq!(rows.len(), hr, "{path:?}: every heart rate before the cut");
        assert!(rows.iter().all(|r| r["time"].as_i64().is_some_and(|t| t <= last)), "nothing after the cut");
        assert_eq!(rows.last().and_then(|r| r["time"].as_i64()), Some(last));
    }
    let hr_all = read_bytes("whole.fit", &whole, now_nanos()).expect("whole").readings.len();
    let first_cut =
        read_bytes("cut.fit", &whole[..whole.len() / 4], now_nanos()).expect("cut").readings.len();
    assert!(first_cut < hr_all, "a quarter of the file is less than the ride");
}

#[tokio::test]
async fn a_field_size_that_is_not_a_multiple_of_its_type_is_read_without_an_error_line() {
    let env = Env::start(&[]).await;
    // Records of a timestamp, a heart rate and a 3-byte field typed uint16, as Coros writes.
    let start = u32::try_from(now_nanos() / 1_000_000_000 - 631_065_600 - 3600).expect("FIT time");
    let mut data = vec![0x40, 0, 0, 20, 0, 3, 253, 4, 0x86, 3, 1, 0x02, 250, 3, 0x84];
    for i in 0..10u8 {
        data.push(0x00);
        data.extend((start + u32::from(i)).to_le_bytes());
        data.extend([140 + i, 1, 2, 3]);
    }
    let mut file = vec![12, 0x10, 0x08, 0x08];
    file.extend(u32::try_from(data.len()).expect("size").to_le_bytes());
    file.extend(b".FIT");
    file.extend(data);
    let crc = velometry_core::files::fit::crc(&file);
    file.extend(crc.to_le_bytes());
    let temp = tempfile::tempdir().expect("tempdir");
    let path = temp.path().join("coros.fit");
    std::fs::write(&path, &file).expect("write");

    let (ok, stdout, stderr) = import(&env, ALICE_EDGE, &path).await;
    assert!(ok, "{stdout}\n{stderr}");
    assert!(!stderr.contains("ERROR"), "nothing the user cannot act on: {stderr}");
    assert!(!stderr.contains("warning"), "nothing is lost: {stderr}");
    assert_eq!(env.wait_rows("SELECT bpm FROM heart_rate", 10).await.len(), 10);

    // Not FIT at all, or a FIT header that is not one: still refused by name.
    for (name, bytes) in
        [("notes.fit", b"these are not a ride".to_vec()), ("header.fit", file[..11].to_vec())]
    {
        let bad = temp.path().join(name);
        std::fs::write(&bad, bytes).expect("write");
        let (ok, _, stderr) = import(&env, ALICE_EDGE, &bad).await;
        assert!(!ok && stderr.contains(name) && stderr.contains("not a FIT file"), "{name}: {stderr}");
    }
}
