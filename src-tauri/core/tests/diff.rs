//! Two stored deliveries compared through the API (`GET /api/diff`) on the fixtures: two
//! attempts at one message, a changed price, a dropped field, a gzip body, text and binary
//! bodies; and which event `GET /api/events/{id}/previous` picks to compare with.

use crate::support;

use serde_json::{Value, json};
use support::{Api, Fixture, deliver, fixture, start_server};

fn with_header(mut f: Fixture, name: &str, value: Option<&str>) -> Fixture {
    f.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    if let Some(value) = value {
        f.headers.push((name.to_string(), value.to_string()));
    }
    f
}

/// `(path, change)` of each change the body's JSON diff lists.
fn paths(diff: &Value) -> Vec<(String, String)> {
    assert_eq!(diff["body"]["diff"]["kind"], "json", "{diff:#}");
    diff["body"]["diff"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["change"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn change_at<'d>(diff: &'d Value, path: &str) -> &'d Value {
    diff["body"]["diff"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path)
        .unwrap_or_else(|| panic!("no change at {path}: {diff:#}"))
}

fn header_changes(diff: &Value) -> Vec<(String, String)> {
    diff["headers"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["change"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_of_stored_deliveries_on_the_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    let url = running.webhook_url.clone();

    // Two attempts at one message: the same body, new attempt headers.
    let sale = fixture("systeme-settings/sale-new");
    let first = deliver(&http, &url, &sale).await;
    let retry = with_header(
        with_header(
            sale.clone(),
            "x-webhook-delivery-attempt-id",
            Some("01a0e483-0a93-7c11-9d55-2b8f3a1c0002"),
        ),
        "x-webhook-delivery-attempt-timestamp",
        Some("2026-09-27T20:18:28+00:00"),
    );
    let second = deliver(&http, &url, &retry).await;
    // The same sale with a coupon: another message.
    let discounted = deliver(
        &http,
        &url,
        &fixture("systeme-settings/sale-new-discounted"),
    )
    .await;

    let previous = api.json(&format!("/api/events/{second}/previous")).await;
    assert_eq!(previous, json!({"id": first, "reason": "attempt"}));
    let previous = api
        .json(&format!("/api/events/{discounted}/previous"))
        .await;
    assert_eq!(
        previous,
        json!({"id": first, "reason": "same_type"}),
        "the previous sale's first attempt, not its retry"
    );

    let attempts = api.json(&format!("/api/diff?a={first}&b={second}")).await;
    assert_eq!(attempts["a"]["id"], first.as_str());
    assert_eq!(attempts["b"]["attempt"], 2);
    assert_eq!(attempts["body"]["identical"], true);
    assert_eq!(paths(&attempts), Vec::<(String, String)>::new());
    assert_eq!(attempts["body"]["diff"]["unchanged"], 40, "every leaf");
    let changed = |name: &str| (name.to_string(), "changed".to_string());
    assert_eq!(
        header_changes(&attempts),
        [
            changed("x-webhook-delivery-attempt-timestamp"),
            changed("x-webhook-delivery-attempt-id"),
        ]
    );
    assert_eq!(
        attempts["headers"]["changes"][1]["a"],
        "01a0e483-0a93-7c11-9d55-2b8f3a1c0001"
    );
    assert_eq!(
        attempts["headers"]["changes"][1]["b"],
        "01a0e483-0a93-7c11-9d55-2b8f3a1c0002"
    );

    // A changed price.
    let price = api
        .json(&format!("/api/diff?a={first}&b={discounted}"))
        .await;
    let expected: Vec<(String, String)> = [
        ("coupon", "changed"),
        ("customer.fields.country", "removed"),
        ("customer.fields.phone_number", "added"),
        ("customer.fields.postcode", "added"),
        ("order.createdAt", "changed"),
        ("order.discountAmount", "changed"),
        ("order.discountType", "changed"),
        ("order.id", "changed"),
        ("order.totalPrice", "changed"),
        ("orderItem.id", "changed"),
    ]
    .iter()
    .map(|(p, c)| (p.to_string(), c.to_string()))
    .collect();
    assert_eq!(paths(&price), expected);
    let total = change_at(&price, "order.totalPrice");
    assert_eq!((&total["a"], &total["b"]), (&json!(4700), &json!(2700)));
    let coupon = change_at(&price, "coupon");
    assert_eq!(coupon["a"], Value::Null);
    assert_eq!(coupon["b"]["code"], "BF20");
    let country = change_at(&price, "customer.fields.country");
    assert_eq!(country["a"], "FR");
    assert!(
        country.get("b").is_none(),
        "a removed path has no new value"
    );
    assert_eq!(price["body"]["identical"], false);
    assert_eq!(price["body"]["diff"]["unchanged"], 32);

    // A dropped field, unsigned.
    let body = String::from_utf8(sale.body.clone()).unwrap();
    let dropped_body = body.replace(r#","statementDescriptor":"BLOGQR""#, "");
    assert_ne!(dropped_body, body);
    let dropped = Fixture {
        name: "sale-new without statementDescriptor".into(),
        body: dropped_body.into_bytes(),
        ..with_header(
            with_header(sale.clone(), "x-webhook-signature", None),
            "x-webhook-message-id",
            Some("01a0e483-09fb-7e42-8b1e-5f6a7c2d0099"),
        )
    };
    let dropped = deliver(&http, &url, &dropped).await;
    let diff = api.json(&format!("/api/diff?a={first}&b={dropped}")).await;
    assert_eq!(
        paths(&diff),
        [(
            "pricePlan.statementDescriptor".to_string(),
            "removed".to_string()
        )]
    );
    assert_eq!(
        change_at(&diff, "pricePlan.statementDescriptor")["a"],
        "BLOGQR"
    );
    assert!(
        header_changes(&diff).contains(&("x-webhook-signature".into(), "removed".into())),
        "{diff:#}"
    );

    // A gzip body against the same order sent plain, one value changed: compared inflated.
    let gzip = fixture("generic/gzip-order");
    let gzipped = deliver(&http, &url, &gzip).await;
    let plain = Fixture {
        name: "gzip-order, inflated".into(),
        body: br#"{"event":"order.created","data":{"order":{"id":2,"buyer":{"email":"Buyer@Example.com","first_name":"Bob","last_name":"Buyer"}}}}"#.to_vec(),
        headers: vec![("Content-Type".into(), "application/json".into())],
    };
    let plain = deliver(&http, &url, &plain).await;
    let diff = api.json(&format!("/api/diff?a={gzipped}&b={plain}")).await;
    assert_eq!(diff["body"]["decoded"], true);
    assert_eq!(
        paths(&diff),
        [("data.order.id".to_string(), "changed".to_string())]
    );
    assert_eq!(
        header_changes(&diff),
        [
            ("content-encoding".to_string(), "removed".to_string()),
            ("content-length".to_string(), "changed".to_string()),
        ]
    );

    // Text bodies line by line.
    let text = |body: &str| Fixture {
        name: "text".into(),
        body: body.as_bytes().to_vec(),
        headers: vec![("Content-Type".into(), "text/plain".into())],
    };
    let one = deliver(&http, &url, &text("ping\nfrom a monitoring job\nok\n")).await;
    let two = deliver(&http, &url, &text("ping\nfrom a cron job\nok\n")).await;
    let diff = api.json(&format!("/api/diff?a={one}&b={two}")).await;
    assert_eq!(diff["body"]["diff"]["kind"], "text", "{diff:#}");
    assert_eq!(diff["body"]["diff"]["unchanged"], 2);
    let lines: Vec<(String, String)> = diff["body"]["diff"]["hunks"][0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["tag"].as_str().unwrap().into(),
                l["text"].as_str().unwrap().into(),
            )
        })
        .collect();
    let line = |tag: &str, text: &str| (tag.to_string(), text.to_string());
    assert_eq!(
        lines,
        [
            line("same", "ping"),
            line("removed", "from a monitoring job"),
            line("added", "from a cron job"),
            line("same", "ok"),
        ]
    );

    // Binary bodies: sizes, hashes, where they part; never the bytes.
    let binary = |bytes: Vec<u8>| Fixture {
        name: "binary".into(),
        body: bytes,
        headers: vec![("Content-Type".into(), "application/octet-stream".into())],
    };
    let bytes: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let mut other = bytes.clone();
    other[1234] ^= 0xff;
    other.push(0);
    let one = deliver(&http, &url, &binary(bytes.clone())).await;
    let two = deliver(&http, &url, &binary(other)).await;
    let same = deliver(&http, &url, &binary(bytes)).await;
    let diff = api.json(&format!("/api/diff?a={one}&b={two}")).await;
    let body = &diff["body"];
    assert_eq!(body["diff"]["kind"], "binary", "{diff:#}");
    assert_eq!(
        (&body["a_size"], &body["b_size"]),
        (&json!(3000), &json!(3001))
    );
    assert_eq!(body["diff"]["identical"], false);
    assert_eq!(body["diff"]["first_difference"], 1234);
    assert_ne!(body["diff"]["a_sha256"], body["diff"]["b_sha256"]);
    assert!(
        diff.to_string().len() < 2_000,
        "no bytes in the answer: {diff}"
    );
    let diff = api.json(&format!("/api/diff?a={one}&b={same}")).await;
    assert_eq!(diff["body"]["identical"], true);
    assert_eq!(diff["body"]["diff"]["identical"], true);
    assert_eq!(diff["body"]["diff"]["first_difference"], Value::Null);

    // Unknown ids and missing parameters.
    let missing = api
        .get(&format!("/api/diff?a={first}&b=no-such-event"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let error: Value = missing.json().await.unwrap();
    assert_eq!(error["code"], "not_found");
    assert!(
        error["message"].as_str().unwrap().contains("no-such-event"),
        "{error}"
    );
    let unpaired = api
        .get(&format!("/api/diff?a={first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(unpaired.status(), 400);
    let none_before = api
        .get(&format!("/api/events/{first}/previous"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        none_before.status(),
        404,
        "the first sale has nothing before it"
    );
    let error: Value = none_before.json().await.unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("SALE_NEW"),
        "{error}"
    );
    running.stop().await;
}
