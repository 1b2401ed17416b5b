//! Inventory calls: the volumes and servers selectors choose from. Volumes
//! by Cinder metadata (`GET /v3/{project}/volumes/detail?metadata=…`) or by
//! EVS tag (`POST /v2/{project}/os-vendor-volumes/resource_instances/action`),
//! servers by ECS tag (`POST /v1/{project}/servers/resource_instances/action`)
//! or all of them from Nova (`GET /v2.1/{project}/servers/detail`).
//!
//! Clouds apply filters loosely (an older Cinder ignores an unknown filter
//! and lists every volume), and a selector that matched too much would back
//! up what nobody chose; so each answer is checked again here, and only
//! what matches comes back.

use std::collections::{BTreeMap, HashSet};

use reqwest::Method;
use serde_json::{json, Value};

use super::request::{Service, MAX_PAGES};
use super::CloudClient;
use crate::api::decode::{self, Tagged};
use crate::api::error::{ApiError, ErrorClass};
use crate::api::types::{Found, TagMatch};
use crate::config::SelectBy;

/// Page size of inventory lists and filters: the largest Cinder, Nova and
/// the tag filters allow (Cinder's `osapi_max_limit`).
pub(super) const INVENTORY_PAGE: usize = 1000;

impl CloudClient {
    /// What this cloud's volume selectors are matched against.
    pub fn select_by(&self) -> SelectBy {
        self.inner.select_by
    }

    /// Volumes whose Cinder metadata holds every one of `pairs`
    /// (`GET /v3/{project}/volumes/detail?metadata=<JSON>`, every page);
    /// every volume when `pairs` is empty. Labels are the metadata.
    pub async fn volumes_with_metadata(
        &self,
        pairs: &BTreeMap<String, String>,
    ) -> Result<Vec<Found>, ApiError> {
        let url = self.url(Service::Volume, "v3", "volumes/detail");
        // A map of strings always serializes.
        let filter = serde_json::to_string(pairs).unwrap_or_default();
        let filters: Vec<(&str, &str)> = if pairs.is_empty() {
            Vec::new()
        } else {
            vec![("metadata", &filter)]
        };
        let found = self
            .list_paged(url, &filters, None, INVENTORY_PAGE, decode::found_volumes)
            .await?;
        Ok(found
            .into_iter()
            .filter(|v| pairs.iter().all(|(k, want)| v.labels.get(k) == Some(want)))
            .collect())
    }

    /// Volumes whose EVS tags match every key of `tags` (with one of the
    /// values given for that key, or any value where one condition on it
    /// has `None`), every page. Labels are the tags. The API refuses an
    /// empty condition list, so that is an error here, sent nowhere.
    pub async fn volumes_with_tags(&self, tags: &[TagMatch]) -> Result<Vec<Found>, ApiError> {
        let url = self.url(
            Service::Volume,
            "v2",
            "os-vendor-volumes/resource_instances/action",
        );
        self.tag_filter(url, tags).await
    }

    /// Servers whose ECS tags match `tags`, as for
    /// [`Self::volumes_with_tags`]. The filter gives no status (its
    /// `resource_detail` is null).
    pub async fn servers_with_tags(&self, tags: &[TagMatch]) -> Result<Vec<Found>, ApiError> {
        let url = self.url(Service::Compute, "v1", "servers/resource_instances/action");
        self.tag_filter(url, tags).await
    }

    /// Every server (`GET /v2.1/{project}/servers/detail`, every page).
    /// Labels are the Nova metadata.
    pub async fn servers(&self) -> Result<Vec<Found>, ApiError> {
        let url = self.url(Service::Compute, "v2.1", "servers/detail");
        self.list_paged(url, &[], None, INVENTORY_PAGE, decode::found_servers)
            .await
    }

    /// Whether server `id` exists (`GET /v2.1/{project}/servers/{id}`):
    /// `false` on 404, or when it shows as `DELETED` (ECS may for a while).
    pub async fn server_exists(&self, id: &str) -> Result<bool, ApiError> {
        let url = self.url(Service::Compute, "v2.1", &format!("servers/{id}"));
        let found = self
            .call(Method::GET, url, None, |body| {
                let server = decode::found_server(body)?;
                if !server.id.eq_ignore_ascii_case(id) {
                    return Err(decode::DecodeError(format!(
                        "the answer is about server `{}`, not `{id}` as asked",
                        server.id
                    )));
                }
                Ok(server)
            })
            .await;
        match found {
            Ok(server) => Ok(!server
                .status
                .is_some_and(|s| s.eq_ignore_ascii_case("DELETED"))),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The `filter` action of a tag API at `url`, every page: `offset`
    /// advances by what each page brought until it reaches `total_count`.
    /// A page that brings nothing new ends the list (resources deleted
    /// meanwhile lower the count); one that only repeats resources already
    /// seen, short of `total_count`, means the server ignores `offset`,
    /// and the list it gives could not be complete: an error.
    async fn tag_filter(&self, url: String, tags: &[TagMatch]) -> Result<Vec<Found>, ApiError> {
        let conditions = grouped(tags);
        if conditions.is_empty() {
            return Err(ApiError::unsendable(
                format!("POST {}", crate::api::auth::path_of(&url)),
                "a tag filter needs at least one tag condition (the API refuses none)",
            ));
        }
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        let mut offset = 0usize;
        for _ in 0..MAX_PAGES {
            let body = filter_body(&conditions, offset);
            let page = self.call_reading(url.clone(), body, decode::tagged).await?;
            let brought = page.items.len();
            let mut new = 0;
            for item in page.items {
                if seen.insert(item.found.id.clone()) {
                    new += 1;
                    if matches(&item, &conditions) {
                        found.push(item.found);
                    }
                }
            }
            offset += brought;
            let total = page
                .total_count
                .map(|t| usize::try_from(t).unwrap_or(usize::MAX));
            let done = match total {
                Some(total) => offset >= total,
                None => brought < INVENTORY_PAGE,
            };
            if done || brought == 0 {
                break;
            }
            if new == 0 {
                return Err(ApiError::answered(
                    &format!("POST {}", crate::api::auth::path_of(&url)),
                    ErrorClass::BadAnswer,
                    None,
                    format!(
                        "the tag filter answered the same resources again at offset {} of {} \
                         (it seems to ignore `offset`); the list of matches would be incomplete",
                        offset - brought,
                        total.map_or_else(|| "?".to_string(), |t| t.to_string())
                    ),
                ));
            }
        }
        Ok(found)
    }
}

/// The `filter` action for one page. `limit` and `offset` are strings, as
/// the documented requests send them.
fn filter_body(conditions: &BTreeMap<&str, Vec<&str>>, offset: usize) -> Value {
    let tags: Vec<Value> = conditions
        .iter()
        .map(|(key, values)| json!({"key": key, "values": values}))
        .collect();
    json!({"action": "filter", "tags": tags,
        "limit": INVENTORY_PAGE.to_string(), "offset": offset.to_string()})
}

/// Conditions by key, each with the values any of which will do (`[]`: any
/// value at all), as the tag APIs take them: keys are ANDed, the values of
/// one key ORed.
fn grouped(tags: &[TagMatch]) -> BTreeMap<&str, Vec<&str>> {
    let mut by_key: BTreeMap<&str, Option<Vec<&str>>> = BTreeMap::new();
    for tag in tags {
        let values = by_key.entry(tag.key.as_str()).or_insert(Some(Vec::new()));
        match (&tag.value, values.as_mut()) {
            (None, _) => *values = None,
            (Some(v), Some(list)) if !list.contains(&v.as_str()) => list.push(v),
            _ => {}
        }
    }
    by_key
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect()
}

/// Whether the resource's tags (as listed, before duplicate keys collapse)
/// meet every condition of [`grouped`]. A resource the filter found has a
/// tag, so one listed without any is taken on the server's word.
fn matches(item: &Tagged, conditions: &BTreeMap<&str, Vec<&str>>) -> bool {
    item.tags.is_empty()
        || conditions.iter().all(|(key, values)| {
            item.tags
                .iter()
                .any(|(k, v)| k == key && (values.is_empty() || values.contains(&v.as_str())))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::api_sample;

    fn tagged(tags: &[(&str, &str)]) -> Tagged {
        let tags: Vec<(String, String)> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Tagged {
            found: Found {
                id: "x".into(),
                name: None,
                status: None,
                labels: tags.iter().cloned().collect(),
                attached_to: Vec::new(),
            },
            tags,
        }
    }

    #[test]
    fn conditions_and_across_keys_and_or_within_one() {
        let want = [
            TagMatch::value("backup", "nightly"),
            TagMatch::value("backup", "weekly"),
            TagMatch::any("team"),
        ];
        let conditions = grouped(&want);
        assert_eq!(
            conditions,
            BTreeMap::from([("backup", vec!["nightly", "weekly"]), ("team", vec![])])
        );
        assert!(matches(
            &tagged(&[("backup", "weekly"), ("team", "")]),
            &conditions
        ));
        assert!(!matches(&tagged(&[("backup", "weekly")]), &conditions));
        assert!(!matches(
            &tagged(&[("backup", "daily"), ("team", "db")]),
            &conditions
        ));
        // A key listed twice (as the published EVS sample does) matches by
        // either value, though the labels keep only the last.
        let twice = tagged(&[("backup", "nightly"), ("backup", "other"), ("team", "db")]);
        assert_eq!(twice.found.labels["backup"], "other");
        assert!(matches(&twice, &conditions));
        // "Any value" wins over values given for the same key.
        let both = [TagMatch::value("k", "v"), TagMatch::any("k")];
        let any = grouped(&both);
        assert_eq!(any, BTreeMap::from([("k", vec![])]));
        assert!(grouped(&[]).is_empty());
    }

    #[test]
    fn filter_requests_have_the_documented_shape() {
        let want = [TagMatch::value("key1", "value1"), TagMatch::any("key2")];
        let conditions = grouped(&want);
        let body = filter_body(&conditions, 2000);
        for sample in [
            "evs_tags_filter_request_otc.json",
            "ecs_tags_filter_request_otc.json",
        ] {
            let documented: Value = serde_json::from_str(&api_sample(sample)).unwrap();
            for key in ["action", "limit", "offset", "tags"] {
                assert_eq!(
                    std::mem::discriminant(&body[key]),
                    std::mem::discriminant(&documented[key]),
                    "{sample}: {key}"
                );
            }
            let documented_tag = documented["tags"][0].as_object().unwrap();
            let tag = body["tags"][0].as_object().unwrap();
            assert_eq!(
                tag.keys().collect::<Vec<_>>(),
                documented_tag.keys().collect::<Vec<_>>()
            );
        }
        assert_eq!(
            body,
            json!({"action": "filter", "limit": "1000", "offset": "2000", "tags": [
                {"key": "key1", "values": ["value1"]}, {"key": "key2", "values": []}]})
        );
    }
}
