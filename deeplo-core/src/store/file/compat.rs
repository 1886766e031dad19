//! Reading records that the Go tool wrote, so that a user who switches keeps their history.
//!
//! The Go tool's record differs from ours in names and in one meaning:
//!
//! | Go                 | here          |
//! |--------------------|---------------|
//! | `commit_sha`       | `commit`      |
//! | `started_at`       | `created_at` (and `started_at` once the run left `pending`) |
//! | `completed_at`     | `finished_at` |
//! | status `success`   | `succeeded`   |
//! | `trigger_source`   | `trigger`: `webhook` and `poll` keep their name, `redeploy` is `manual`, `addition`, `change` and `resume` are `reconcile`; a missing or unknown one is `manual` |
//!
//! Its `report_*` fields (one of them a token) are dropped: they are never written back.
//! A record is taken for a Go one when it has no `created_at`; records are always written
//! in our form, so a Go record is converted the first time the store saves it again.

use serde_json::{Map, Value};

use crate::model::Deployment;

/// Decodes a record file's contents, in our form or the Go tool's.
pub(super) fn decode_record(data: &[u8]) -> Result<Deployment, String> {
    let value: Value = serde_json::from_slice(data).map_err(|e| format!("invalid JSON: {e}"))?;
    record_from_value(value)
}

/// Decodes one record already parsed as JSON (an entry of `projects.json`, say).
pub(super) fn record_from_value(mut value: Value) -> Result<Deployment, String> {
    let Value::Object(map) = &mut value else {
        return Err("a record must be a JSON object".to_owned());
    };
    if !map.contains_key("created_at") {
        from_go(map);
    }
    serde_json::from_value(value).map_err(|e| format!("not a deployment record: {e}"))
}

fn from_go(map: &mut Map<String, Value>) {
    rename(map, "commit_sha", "commit");
    rename(map, "completed_at", "finished_at");
    if let Some(started) = map.get("started_at").cloned() {
        map.insert("created_at".to_owned(), started);
    }
    if map.get("status").and_then(Value::as_str) == Some("success") {
        map.insert("status".to_owned(), Value::from("succeeded"));
    }
    if map.get("status").and_then(Value::as_str) == Some("pending") {
        map.remove("started_at");
    }
    let trigger = match map.remove("trigger_source").as_ref().and_then(Value::as_str) {
        Some("webhook") => "webhook",
        Some("poll") => "poll",
        Some("addition" | "change" | "resume") => "reconcile",
        _ => "manual",
    };
    map.entry("trigger").or_insert_with(|| Value::from(trigger));
    for field in ["report_token", "report_status", "report_error"] {
        map.remove(field);
    }
}

fn rename(map: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(value) = map.remove(from) {
        map.entry(to).or_insert(value);
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::model::{DeployStatus, Trigger};

    fn go_record(status: &str, trigger: Option<&str>) -> String {
        let trigger = trigger.map(|t| format!(r#""trigger_source": "{t}","#)).unwrap_or_default();
        format!(
            r#"{{
  "id": "1700000000-0a1b2c3d",
  "project": "web",
  "host": "h1",
  "commit_sha": "{}",
  "branch": "main",
  "status": "{status}",
  {trigger}
  "started_at": "2023-11-14T23:13:20.123456789+01:00",
  "completed_at": "2023-11-14T23:14:00+01:00",
  "report_token": "ghs_secret",
  "report_status": "ok"
}}"#,
            "ab".repeat(20)
        )
    }

    #[test]
    fn go_records_are_read() {
        let record = decode_record(go_record("success", Some("webhook")).as_bytes()).unwrap();
        assert_eq!(record.id.as_str(), "1700000000-0a1b2c3d");
        assert_eq!(record.commit.as_str(), "ab".repeat(20));
        assert_eq!(record.status, DeployStatus::Succeeded);
        assert_eq!(record.trigger, Trigger::Webhook);
        let created: Timestamp = "2023-11-14T22:13:20.123456789Z".parse().unwrap();
        assert_eq!(record.created_at, created);
        assert_eq!(record.started_at, Some(created));
        assert_eq!(record.finished_at, Some("2023-11-14T22:14:00Z".parse().unwrap()));
        let back = serde_json::to_string(&record).unwrap();
        assert!(!back.contains("ghs_secret"), "{back}");
    }

    #[test]
    fn go_triggers_map_to_ours() {
        let cases = [
            (Some("poll"), Trigger::Poll),
            (Some("redeploy"), Trigger::Manual),
            (Some("addition"), Trigger::Reconcile),
            (Some("change"), Trigger::Reconcile),
            (Some("resume"), Trigger::Reconcile),
            (Some("something-new"), Trigger::Manual),
            (None, Trigger::Manual),
        ];
        for (go, ours) in cases {
            let record = decode_record(go_record("failed", go).as_bytes()).unwrap();
            assert_eq!(record.trigger, ours, "{go:?}");
        }
    }

    #[test]
    fn a_pending_go_record_has_not_started() {
        let record = decode_record(go_record("pending", None).as_bytes()).unwrap();
        assert_eq!(record.status, DeployStatus::Pending);
        assert_eq!(record.started_at, None);
    }

    #[test]
    fn our_records_round_trip() {
        let record = decode_record(go_record("running", Some("poll")).as_bytes()).unwrap();
        let ours = serde_json::to_vec(&record).unwrap();
        assert_eq!(decode_record(&ours).unwrap(), record);
    }

    #[test]
    fn broken_records_say_why() {
        assert!(decode_record(b"{").unwrap_err().starts_with("invalid JSON"));
        assert!(decode_record(b"[]").unwrap_err().contains("object"));
        let err = decode_record(br#"{"id": "../x", "created_at": "2023-11-14T22:13:20Z"}"#).unwrap_err();
        assert!(err.starts_with("not a deployment record"), "{err}");
    }
}
