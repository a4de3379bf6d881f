//! Builds the spectator page (`../web`) and embeds it: `npm ci` installs the pinned npm
//! packages into `OUT_DIR` (never into the source tree), `web/build.mjs` bundles them with
//! esbuild into assets named by their content's hash, and each asset is gzipped here once,
//! so the hub serves the compressed bytes as they are. `OUT_DIR/web.rs` lists them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    for watched in ["package.json", "package-lock.json", "build.mjs", "src"] {
        println!("cargo:rerun-if-changed={}", web.join(watched).display());
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let npm = out.join("npm");
    std::fs::create_dir_all(&npm).expect("create OUT_DIR/npm");
    let lock = std::fs::read(web.join("package-lock.json")).expect("read web/package-lock.json");
    let installed = npm.join("package-lock.json");
    if std::fs::read(&installed).ok().as_deref() != Some(&lock[..]) || !npm.join("node_modules").is_dir() {
        std::fs::copy(web.join("package.json"), npm.join("package.json")).expect("copy web/package.json");
        std::fs::write(&installed, &lock).expect("copy web/package-lock.json");
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&npm));
    }
    // For the browser tests, which run axe-core from the same packages.
    println!("cargo:rustc-env=VELOMETRY_WEB_NODE_MODULES={}", npm.join("node_modules").display());
    let dist = out.join("web");
    run(Command::new("node").arg(web.join("build.mjs")).arg(npm.join("node_modules")).arg(&dist));

    let mut assets = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dist)
        .expect("read the bundle")
        .map(|e| e.expect("bundle entry").file_name().into_string().expect("UTF-8 asset name"))
        .filter(|n| !n.ends_with(".gz"))
        .collect();
    names.sort();
    for name in &names {
        let body = std::fs::read(dist.join(name)).expect("read an asset");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&body).and_then(|()| gz.flush()).expect("gzip");
        let gz = gz.finish().expect("gzip");
        // What gzip cannot shrink (PNG) is served as it is: an empty gzipped body.
        let gz = if gz.len() < body.len() { gz } else { Vec::new() };
        std::fs::write(dist.join(format!("{name}.gz")), gz).expect("write gzip");
        assets.push(name);
    }
    let mut list = String::from(
        "/// The page's files: (name, body, gzipped body, empty when gzip would not shrink it).\n\
         pub static FILES: &[(&str, &[u8], &[u8])] = &[\n",
    );
    for name in assets {
        let path = dist.join(name);
        list.push_str(&format!(
            "    ({name:?}, include_bytes!({path:?}), include_bytes!({gz:?})),\n",
            path = path.display().to_string(),
            gz = format!("{}.gz", path.display()),
        ));
    }
    list.push_str("];\n");
    std::fs::write(out.join("web.rs"), list).expect("write OUT_DIR/web.rs");
}

/// Runs a build step, failing the build with what to install when the tool is missing.
fn run(command: &mut Command) {
    let program = command.get_program().to_string_lossy().into_owned();
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("building the spectator page: {program} failed ({status})"),
        Err(e) => panic!(
            "building the spectator page needs Node.js and npm ({program}: {e}); \
             deploy/local/test.sh and deploy/local/run.sh install them (Debian's nodejs and npm)"
        ),
    }
}
