//! `docs/api/openapi.yaml` describes exactly the routes the daemon serves, each with the
//! role it needs.

use std::collections::BTreeSet;

#[test]
fn the_openapi_file_matches_the_route_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api/openapi.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let doc: serde_json::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let role =
                operation["x-deeplo-role"].as_str().unwrap_or_else(|| panic!("{method} {path}: no x-deeplo-role"));
            documented.insert((method.to_uppercase(), path.clone(), role.to_owned()));
            assert!(operation["responses"]["401"].is_object(), "{method} {path}: the 401 answer is documented");
        }
    }
    let served: BTreeSet<(String, String, String)> = deeplo_cli::ROUTES
        .iter()
        .map(|r| {
            let role = r.action.map_or("any", |a| a.minimum().as_str());
            (r.method.to_owned(), r.path.to_owned(), role.to_owned())
        })
        .collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty() && extra.is_empty(), "undocumented: {missing:?}\ndocumented but not served: {extra:?}");
}
