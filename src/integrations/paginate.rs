//! Where the next page is, for each paging style the manifests declare
//! (`paginate:`): a cursor sent back as a query parameter, a next URL in
//! the body, an RFC 8288 Link header, page numbers, offsets; and when a
//! vendor's answer means there is none. Pure: the executor sends, this
//! decides.

use reqwest::header::HeaderMap;
use serde_json::Value as Json;

use super::manifest::Paginate;
use super::response::{absolute, next_link, scalar_text};
use crate::template::lookup as lookup_path;

/// The request for the next page.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Next {
    pub(super) url: String,
    /// The URL came from the vendor (a next link): sent as is.
    pub(super) verbatim: bool,
    /// Query parameters added to `url` (the cursor, page or offset).
    pub(super) query: Vec<(String, String)>,
}

/// One page as read: its body and headers, how many items it held, and
/// what was asked for it.
pub(super) struct Read<'a> {
    pub(super) body: &'a Json,
    pub(super) headers: &'a HeaderMap,
    /// Items on this page.
    pub(super) got: usize,
    /// Items on every page so far, this one included.
    pub(super) so_far: usize,
    /// Pages read so far, this one included.
    pub(super) pages: u32,
    /// The query this page was asked with (its cursor, if any).
    pub(super) asked: &'a [(String, String)],
}

/// The next page after `page`, `None` when the listing is complete, or
/// why paging cannot go on (a cursor that does not advance would loop
/// forever).
pub(super) fn next(pg: &Paginate, first_url: &str, page: &Read) -> Result<Option<Next>, String> {
    let more = pg.has_more.as_ref().map(|p| {
        lookup_path(page.body, p)
            .and_then(Json::as_bool)
            .unwrap_or(false)
    });
    if more == Some(false) {
        return Ok(None);
    }
    let again = |param: &str, value: String| Next {
        url: first_url.to_string(),
        verbatim: false,
        query: vec![(param.to_string(), value)],
    };
    // Offset and page-number paging end on an empty page or once the
    // stated total has arrived; without a total, only the empty page says so.
    let below_total = || {
        let total = pg
            .total
            .as_ref()
            .and_then(|t| lookup_path(page.body, t))
            .and_then(Json::as_u64);
        page.got > 0 && total.is_none_or(|t| (page.so_far as u64) < t)
    };
    if let (Some(cur), Some(param)) = (&pg.cursor, &pg.cursor_param) {
        let next = lookup_path(page.body, cur)
            .map(scalar_text)
            .filter(|c| !c.is_empty());
        if next.is_some() && next.as_deref() == page.asked.first().map(|(_, v)| v.as_str()) {
            return Err(format!(
                "pagination did not advance: page {} returned the cursor it was asked for",
                page.pages
            ));
        }
        Ok(next.map(|c| again(param, c)))
    } else if let Some(nu) = &pg.next_url {
        Ok(lookup_path(page.body, nu)
            .and_then(Json::as_str)
            .filter(|u| !u.is_empty())
            .map(|u| Next {
                url: absolute(first_url, u),
                verbatim: true,
                query: vec![],
            }))
    } else if pg.link_header {
        Ok(next_link(page.headers).map(|u| Next {
            url: absolute(first_url, &u),
            verbatim: true,
            query: vec![],
        }))
    } else if let Some(param) = &pg.page_param {
        let number = pg.first_page + u64::from(page.pages);
        Ok(below_total().then(|| again(param, number.to_string())))
    } else if let Some(param) = &pg.offset_param {
        Ok(below_total().then(|| again(param, page.so_far.to_string())))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIRST: &str = "https://api.vendor.example/v1/keys?limit=2";

    fn style(yaml: &str) -> Paginate {
        let m: serde_yaml::Mapping = serde_yaml::from_str(yaml).unwrap();
        let s = |k: &str| m.get(k).and_then(|v| v.as_str()).map(str::to_string);
        Paginate {
            items: s("items").unwrap_or_else(|| "data".into()),
            cursor: s("cursor"),
            cursor_param: s("cursor_param"),
            next_url: s("next_url"),
            link_header: m.contains_key("link_header"),
            offset_param: s("offset_param"),
            page_param: s("page_param"),
            first_page: m.get("first_page").and_then(|v| v.as_u64()).unwrap_or(1),
            has_more: s("has_more"),
            total: s("total"),
            max_pages: 100,
        }
    }

    fn read<'a>(
        body: &'a Json,
        headers: &'a HeaderMap,
        got: usize,
        so_far: usize,
        pages: u32,
        asked: &'a [(String, String)],
    ) -> Read<'a> {
        Read {
            body,
            headers,
            got,
            so_far,
            pages,
            asked,
        }
    }

    #[test]
    fn a_cursor_is_sent_back_until_the_vendor_says_there_is_no_more() {
        // OpenAI's admin API keys: `has_more` and `last_id`, sent as `after`.
        let pg = style("{cursor: last_id, cursor_param: after, has_more: has_more}");
        let h = HeaderMap::new();
        let body = json!({"data": [1, 2], "has_more": true, "last_id": "key_2"});
        let n = next(&pg, FIRST, &read(&body, &h, 2, 2, 1, &[])).unwrap();
        assert_eq!(
            n,
            Some(Next {
                url: FIRST.into(),
                verbatim: false,
                query: vec![("after".into(), "key_2".into())]
            })
        );
        // The last page still names a last id; `has_more: false` wins.
        let last = json!({"data": [3], "has_more": false, "last_id": "key_3"});
        assert_eq!(next(&pg, FIRST, &read(&last, &h, 1, 3, 2, &[])), Ok(None));
        // A `has_more` the vendor left out means no more, not "keep going".
        let omitted = json!({"data": [3], "last_id": "key_3"});
        assert_eq!(
            next(&pg, FIRST, &read(&omitted, &h, 1, 3, 2, &[])),
            Ok(None)
        );
    }

    #[test]
    fn a_cursor_that_does_not_advance_stops_paging_with_the_reason() {
        let pg = style("{cursor: next, cursor_param: cursor}");
        let h = HeaderMap::new();
        let body = json!({"data": [1], "next": "c1"});
        let asked = [("cursor".to_string(), "c1".to_string())];
        let err = next(&pg, FIRST, &read(&body, &h, 1, 3, 3, &asked)).unwrap_err();
        assert_eq!(
            err,
            "pagination did not advance: page 3 returned the cursor it was asked for"
        );
        // An empty cursor is the end, as Slack's `next_cursor: ""` is.
        let end = json!({"data": [1], "next": ""});
        assert_eq!(next(&pg, FIRST, &read(&end, &h, 1, 1, 1, &[])), Ok(None));
    }

    #[test]
    fn a_next_link_is_followed_as_the_vendor_wrote_it_relative_or_not() {
        // Microsoft Graph's `@odata.nextLink` is absolute and carries its own query.
        let pg = style("{next_url: '@odata.nextLink'}");
        let h = HeaderMap::new();
        let link = "https://api.vendor.example/v1/keys?$skiptoken=X%27Y";
        let body = json!({"value": [], "@odata.nextLink": link});
        let n = next(&pg, FIRST, &read(&body, &h, 0, 0, 1, &[]))
            .unwrap()
            .unwrap();
        assert_eq!((n.url.as_str(), n.verbatim), (link, true));
        let relative = json!({"@odata.nextLink": "/v1/keys?page=2"});
        let n = next(&pg, FIRST, &read(&relative, &h, 0, 0, 1, &[]))
            .unwrap()
            .unwrap();
        assert_eq!(n.url, "https://api.vendor.example/v1/keys?page=2");

        let pg = style("{link_header: true}");
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            "<https://api.vendor.example/v1/keys?page=2>; rel=\"next\", <https://api.vendor.example/v1/keys?page=9>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        let n = next(&pg, FIRST, &read(&Json::Null, &h, 2, 2, 1, &[]))
            .unwrap()
            .unwrap();
        assert_eq!(n.url, "https://api.vendor.example/v1/keys?page=2");
        assert_eq!(
            next(
                &pg,
                FIRST,
                &read(&Json::Null, &HeaderMap::new(), 2, 2, 1, &[])
            ),
            Ok(None)
        );
    }

    #[test]
    fn offsets_and_page_numbers_end_at_the_total_or_on_an_empty_page() {
        // Mailchimp: `offset` by the items received, `total_items` in the body.
        let pg = style("{offset_param: offset, total: total_items}");
        let h = HeaderMap::new();
        let body = json!({"total_items": 3});
        let n = next(&pg, FIRST, &read(&body, &h, 2, 2, 1, &[]))
            .unwrap()
            .unwrap();
        assert_eq!(n.query, vec![("offset".to_string(), "2".to_string())]);
        assert_eq!(next(&pg, FIRST, &read(&body, &h, 1, 3, 2, &[])), Ok(None));
        // With no total, an empty page ends it.
        let no_total = json!({});
        assert!(next(&pg, FIRST, &read(&no_total, &h, 2, 4, 2, &[]))
            .unwrap()
            .is_some());
        assert_eq!(
            next(&pg, FIRST, &read(&no_total, &h, 0, 4, 3, &[])),
            Ok(None)
        );

        // SFMC: `$page` from 1; the second request asks for page 2.
        let pg = style("{page_param: $page, first_page: 1}");
        let n = next(&pg, FIRST, &read(&no_total, &h, 2, 2, 1, &[]))
            .unwrap()
            .unwrap();
        assert_eq!(n.query, vec![("$page".to_string(), "2".to_string())]);
        assert_eq!(
            next(&pg, FIRST, &read(&no_total, &h, 0, 2, 2, &[])),
            Ok(None)
        );
    }
}
