//! `client/generated/` (the client's models and client) and `generated/` (the server's list of
//! secret places) hold, checked in, the code build.rs makes of `openapi.json`, so a reviewer
//! sees what a spec change does. This test fails when the two differ; to refresh it after
//! editing the spec, run `BIFROST_REFRESH_GENERATED=1 cargo test --test generated`.

use std::path::Path;

#[test]
fn generated_code_is_what_build_rs_makes_of_openapi_json() {
    let refresh = std::env::var_os("BIFROST_REFRESH_GENERATED").is_some();
    let built_dir = Path::new(env!("OUT_DIR"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (folder, file) in [
        ("client/generated", "types.rs"),
        ("client/generated", "client.rs"),
        ("generated", "secrets.rs"),
    ] {
        let checked_in_dir = root.join(folder);
        let built = std::fs::read_to_string(built_dir.join(file)).expect("build.rs output");
        let checked_in_path = checked_in_dir.join(file);
        if refresh {
            std::fs::create_dir_all(&checked_in_dir).expect("create the folder");
            std::fs::write(&checked_in_path, &built).expect("write the checked-in copy");
            continue;
        }
        let checked_in = std::fs::read_to_string(&checked_in_path).unwrap_or_default();
        assert!(
            checked_in == built,
            "{folder}/{file} differs from what build.rs makes of openapi.json; \
             run `BIFROST_REFRESH_GENERATED=1 cargo test --test generated` and commit {folder}/"
        );
    }
}

/// The client crate's version says which API it speaks: its build metadata is the spec's
/// `info.version` (oxide.rs's convention), so a spec release bumps both together.
#[test]
fn the_client_version_names_the_spec_version() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("openapi.json")).unwrap()).unwrap();
    let manifest = std::fs::read_to_string(root.join("client/Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("the client crate's version");
    let version = semver::Version::parse(version).unwrap();
    assert_eq!(
        version.build.as_str(),
        spec["info"]["version"].as_str().unwrap()
    );
}
