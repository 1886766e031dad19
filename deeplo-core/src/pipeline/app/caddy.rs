//! The proxy's configuration: what each application's route says, kept on the host one file
//! per application, and the whole Caddy JSON config built from them.
//!
//! One route file per application (`{deploy_dir}/.deeplo-proxy/routes/<app>.json`) is the
//! host's record of which release is live; the whole config is rebuilt from every route
//! file at each switch and loaded through Caddy's admin API (`caddy reload`, which POSTs
//! it to `/load`): one atomic change, which Caddy applies gracefully (requests in flight
//! finish on the old config, listeners are kept), or refuses as a whole.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Where the proxy sends one application's traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Route {
    /// The application's name on the host (its compose-style project name).
    pub app: String,
    /// The live release's container, on the `deeplo` network.
    pub container: String,
    /// The port the application listens on in its container.
    pub port: u16,
    /// The live release's commit.
    pub commit: String,
    /// The address the proxy serves it on, as `hosts[].listen` says (`127.0.0.1:8080`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The host name the proxy routes to it over HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

impl Route {
    fn upstream(&self) -> String {
        format!("{}:{}", self.container, self.port)
    }

    /// The port the proxy listens on inside its container for `listen` (the one published
    /// on the host's address).
    fn listen_port(&self) -> Option<u16> {
        let listen = self.listen.as_deref()?;
        listen.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
    }
}

/// The admin endpoint inside the proxy's container (Caddy's default), which `caddy reload`
/// and the readiness check use; it is not published.
pub(crate) const ADMIN: &str = "localhost:2019";

/// The whole Caddy config for these routes: one server per `listen` address (plain HTTP),
/// and one HTTPS server for every `domain` route (certificates managed by Caddy, port 80
/// redirecting). Sorted by application, so that the same routes give the same bytes.
pub(crate) fn config(routes: &[Route]) -> Value {
    let mut routes: Vec<&Route> = routes.iter().collect();
    routes.sort_by(|a, b| a.app.cmp(&b.app));
    let mut servers = serde_json::Map::new();
    for route in &routes {
        if let Some(port) = route.listen_port() {
            servers.insert(
                format!("deeplo-{}", route.app),
                json!({
                    "listen": [format!(":{port}")],
                    "routes": [{"handle": [reverse_proxy(route)], "terminal": true}],
                    "automatic_https": {"disable": true},
                }),
            );
        }
    }
    let domains: Vec<Value> = routes
        .iter()
        .filter_map(|r| {
            r.domain.as_ref().map(|d| json!({"match": [{"host": [d]}], "handle": [reverse_proxy(r)], "terminal": true}))
        })
        .collect();
    if !domains.is_empty() {
        servers.insert("deeplo-domains".into(), json!({"listen": [":443"], "routes": domains}));
    }
    json!({
        "admin": {"listen": ADMIN},
        "apps": {"http": {
            // Connections still open on the old config get this long to finish at a reload.
            "grace_period": "30s",
            "servers": servers,
        }},
    })
}

/// A reverse proxy to the route's container that retries a request whose connection
/// failed for up to 5 s (a container restarting under its restart policy), as
/// kamal-proxy and Caddy's docs advise.
fn reverse_proxy(route: &Route) -> Value {
    json!({
        "handler": "reverse_proxy",
        "upstreams": [{"dial": route.upstream()}],
        "load_balancing": {"try_duration": "5s", "try_interval": "250ms"},
    })
}

/// The ports the proxy's container must publish for one application (`docker run -p`
/// specs): its `listen` address, and 80 and 443 for a domain.
pub(crate) fn published(app: &crate::config::Application) -> Vec<String> {
    let mut out: Vec<String> = app.listen.iter().map(|l| l.publish(l.port)).collect();
    if app.domain.is_some() {
        out.extend(["80:80".to_owned(), "443:443".to_owned()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(app: &str, listen: Option<&str>, domain: Option<&str>) -> Route {
        Route {
            app: app.into(),
            container: format!("{app}-0123abcd"),
            port: 8080,
            commit: "0123abcd".repeat(5),
            listen: listen.map(Into::into),
            domain: domain.map(Into::into),
        }
    }

    #[test]
    fn one_server_per_listen_address_and_one_for_every_domain() {
        let routes = [
            route("web", Some("127.0.0.1:9000"), None),
            route("api", None, Some("api.example.com")),
            route("shop", Some(":80"), Some("shop.example.com")),
        ];
        let config = config(&routes);
        let servers = &config["apps"]["http"]["servers"];
        assert_eq!(servers["deeplo-web"]["listen"], json!([":9000"]));
        assert_eq!(servers["deeplo-web"]["routes"][0]["handle"][0]["upstreams"][0]["dial"], "web-0123abcd:8080");
        assert_eq!(servers["deeplo-shop"]["listen"], json!([":80"]));
        assert!(servers.get("deeplo-api").is_none(), "a domain-only app has no server of its own");
        let domains = servers["deeplo-domains"]["routes"].as_array().unwrap();
        let hosts: Vec<&Value> = domains.iter().map(|r| &r["match"][0]["host"][0]).collect();
        assert_eq!(hosts, ["api.example.com", "shop.example.com"], "sorted by application");
        assert_eq!(config["admin"]["listen"], ADMIN);
    }

    #[test]
    fn the_same_routes_give_the_same_config_in_any_order() {
        let a = route("a", Some("127.0.0.1:9001"), None);
        let b = route("b", Some("127.0.0.1:9002"), None);
        assert_eq!(config(&[a.clone(), b.clone()]).to_string(), config(&[b, a]).to_string());
    }

    #[test]
    fn ports_published_for_listen_addresses_and_domains() {
        let mut app = crate::config::Application::new(crate::path::RelPath::new("Dockerfile").unwrap(), 8080);
        app.listen = Some(crate::config::ListenAddress::parse("127.0.0.1:9000").unwrap());
        assert_eq!(published(&app), ["127.0.0.1:9000:9000"]);
        app.domain = Some("api.example.com".into());
        assert_eq!(published(&app), ["127.0.0.1:9000:9000", "80:80", "443:443"]);
    }

    #[test]
    fn a_route_file_reads_back() {
        let r = route("web", Some("127.0.0.1:9000"), None);
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains('\n'));
        assert_eq!(serde_json::from_str::<Route>(&text).unwrap(), r);
    }
}
