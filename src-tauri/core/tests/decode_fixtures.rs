//! Decoding, table-tested on the wire-exact fixtures of both systeme.io families and on
//! deliveries that are not systeme.io at all.

use crate::support;

use bytes::Bytes;
use hookscope_core::capture::decode::{Family, Source};
use hookscope_core::capture::{Capture, Decoding, RawDelivery};

struct Expected {
    fixture: &'static str,
    source: Source,
    family: Family,
    event_type: Option<&'static str>,
    label: &'static str,
    summary: &'static str,
    email: Option<&'static str>,
    contact_id: Option<&'static str>,
    name: Option<&'static str>,
    occurred_at: Option<&'static str>,
}

/// A POST with these headers and body, as the ingest listener would build it.
fn capture_of(headers: Vec<(String, String)>, body: Bytes) -> Capture {
    Capture::build(
        RawDelivery {
            id: "test".into(),
            received_at: 0,
            endpoint_id: "ep".into(),
            endpoint_name: "Default".into(),
            method: "POST".into(),
            path: "/h/token".into(),
            query: None,
            headers,
            remote_addr: None,
            client_ip: None,
            via_tunnel: false,
            body,
        },
        &Decoding::new(1 << 20),
    )
}

fn decoded(name: &str) -> Capture {
    let fixture = support::fixture(name);
    capture_of(fixture.headers, Bytes::from(fixture.body))
}

#[rustfmt::skip]
const TABLE: &[Expected] = &[
    Expected { fixture: "systeme-automation/sale-completed", source: Source::SystemeAutomation, family: Family::Sale,
        event_type: Some("customer.sale.completed"), label: "New sale",
        summary: "New sale: 5.83 EUR, Comment créer un blog qui rapporte",
        email: Some("test-1922@systeme.io"), contact_id: Some("20756080"), name: Some("test-1922 test-1922"),
        occurred_at: Some("2021-09-10T14:23:33+00:00") },
    Expected { fixture: "systeme-automation/tag-added", source: Source::SystemeAutomation, family: Family::TagAdded,
        event_type: Some("contact.tag.added"), label: "Tag added", summary: "Tag added: MyAwesomeTag",
        email: Some("temochkaykvlv+lksdllfnsnkfdls@gmail.com"), contact_id: Some("29143587"), name: None,
        occurred_at: Some("2021-10-05T09:52:38+00:00") },
    Expected { fixture: "systeme-automation/tag-removed", source: Source::SystemeAutomation, family: Family::TagRemoved,
        event_type: Some("contact.tag.removed"), label: "Tag removed", summary: "Tag removed: MyAwesomeTag",
        email: Some("temochkaykvlv+test@gmail.com"), contact_id: Some("27212122"), name: Some("Tema test Testovich"),
        occurred_at: Some("2021-10-05T09:54:08+00:00") },
    Expected { fixture: "systeme-automation/optin-funnel-step", source: Source::SystemeAutomation, family: Family::Optin,
        event_type: Some("contact.optin.completed"), label: "Opt-in",
        summary: "Opt-in: Squeeze page (webhook data structure documentation)",
        email: Some("temochkaykvlv+aslkfkvmk@gmail.com"), contact_id: Some("29142804"), name: None,
        occurred_at: Some("2021-10-05T08:10:29+00:00") },
    Expected { fixture: "systeme-automation/optin-blog-page", source: Source::SystemeAutomation, family: Family::Optin,
        event_type: Some("contact.optin.completed"), label: "Opt-in", summary: "Opt-in: Home page (Test blog)",
        email: Some("temochkaykvlv+sdadk@gmail.com"), contact_id: Some("29148862"), name: None,
        occurred_at: Some("2021-10-05T10:25:23+00:00") },
    Expected { fixture: "systeme-automation/webinar-registered", source: Source::SystemeAutomation, family: Family::Webinar,
        event_type: Some("contact.webinar.registered"), label: "Webinar registration",
        summary: "Webinar registration: 2021-10-05 15:00 UTC (webinar funnel)",
        email: Some("temochkaykvlv+wklm@gmail.com"), contact_id: Some("29149232"), name: None,
        occurred_at: Some("2021-10-05T10:37:06+00:00") },
    Expected { fixture: "systeme-automation/course-enrolled", source: Source::SystemeAutomation, family: Family::Course,
        event_type: Some("contact.course.enrolled"), label: "Course enrolment",
        summary: "Course enrolment: webhook data structure doc (full access)",
        email: Some("temochkaykvlv+kek@gmail.com"), contact_id: Some("29150265"), name: Some("name last name"),
        occurred_at: Some("2021-10-05T11:12:29+00:00") },
    Expected { fixture: "systeme-automation/course-bundle-enrolled", source: Source::SystemeAutomation, family: Family::Course,
        event_type: Some("contact.course_bundle.enrolled"), label: "Bundle enrolment",
        summary: "Bundle enrolment: webhook data structure doc",
        email: Some("temochkaykvlv+test@gmail.com"), contact_id: Some("27212122"), name: Some("Tema test Testovich"),
        occurred_at: Some("2021-10-05T15:42:47+00:00") },
    Expected { fixture: "systeme-automation/campaign-finished", source: Source::SystemeAutomation, family: Family::Campaign,
        event_type: Some("contact.campaign.finished"), label: "Campaign finished", summary: "Campaign finished: test campaign",
        email: Some("temochkaykvlv+luiklas@gmail.com"), contact_id: Some("29150412"), name: Some("sadkl; dsl;;"),
        occurred_at: Some("2021-10-05T15:42:53+00:00") },
    Expected { fixture: "systeme-automation/page-visited", source: Source::SystemeAutomation, family: Family::Page,
        event_type: Some("contact.page.visited"), label: "Page visited",
        summary: "Page visited: Thank You / Download Page (webhook data structure documentation)",
        email: Some("temochkaykvlv+asdfg@gmail.com"), contact_id: Some("29171084"), name: None,
        occurred_at: Some("2021-10-05T16:29:02+00:00") },
    Expected { fixture: "systeme-automation/email-link-clicked", source: Source::SystemeAutomation, family: Family::EmailClick,
        event_type: Some("contact.email_link.clicked"), label: "Email link clicked",
        summary: "Email link clicked: test email webhook",
        email: Some("temochkaykvlv@gmail.com"), contact_id: Some("24431099"), name: Some("Test Testovich"),
        occurred_at: Some("2021-10-07T10:07:08+00:00") },
    Expected { fixture: "systeme-automation/course-completed-unknown-type", source: Source::SystemeAutomation, family: Family::Course,
        event_type: Some("contact.course.completed"), label: "Course completed",
        summary: "Course completed: Formation Un blog qui rapporte",
        email: Some("MARIE.DUPONT@EXAMPLE.FR"), contact_id: Some("445573087"), name: Some("Marie Dupont"),
        occurred_at: Some("2026-10-01T09:00:00+00:00") },
    Expected { fixture: "systeme-automation/subscription-payment-failed", source: Source::SystemeAutomation, family: Family::Subscription,
        event_type: Some("subscription.payment.failed"), label: "Subscription payment failed",
        summary: "Subscription payment failed: Club mensuel",
        email: Some("marie.dupont@example.fr"), contact_id: Some("445573087"), name: Some("Marie Dupont"),
        occurred_at: Some("2026-11-05T03:00:00+00:00") },
    Expected { fixture: "systeme-settings/sale-new-discounted", source: Source::SystemeSettings, family: Family::Sale,
        event_type: Some("SALE_NEW"), label: "New sale", summary: "New sale: 27.00 EUR, Blog qui rapporte",
        email: Some("Marie.Dupont@example.fr"), contact_id: Some("445573087"), name: Some("Marie Dupont"),
        occurred_at: Some("2026-09-27T20:23:27+00:00") },
    Expected { fixture: "systeme-settings/sale-new", source: Source::SystemeSettings, family: Family::Sale,
        event_type: Some("SALE_NEW"), label: "New sale", summary: "New sale: 47.00 EUR, Blog qui rapporte",
        email: Some("Marie.Dupont@example.fr"), contact_id: Some("445573087"), name: Some("Marie Dupont"),
        occurred_at: Some("2026-09-27T20:17:27+00:00") },
    Expected { fixture: "systeme-settings/sale-canceled", source: Source::SystemeSettings, family: Family::SaleCanceled,
        event_type: Some("SALE_CANCELED"), label: "Sale canceled", summary: "Sale canceled: 47.00 EUR, Blog qui rapporte",
        email: Some("Marie.Dupont@example.fr"), contact_id: Some("445573087"), name: Some("Marie Dupont"),
        occurred_at: Some("2026-09-27T20:22:27+00:00") },
    Expected { fixture: "systeme-settings/contact-created", source: Source::SystemeSettings, family: Family::Contact,
        event_type: Some("CONTACT_CREATED"), label: "Contact created", summary: "Contact created: marie.dupont@example.fr",
        email: Some("marie.dupont@example.fr"), contact_id: Some("445573087"), name: Some("Marie Dupont"),
        occurred_at: Some("2026-09-27T20:18:27+00:00") },
    Expected { fixture: "systeme-settings/contact-opt-in", source: Source::SystemeSettings, family: Family::Optin,
        event_type: Some("CONTACT_OPT_IN"), label: "Opt-in", summary: "Opt-in: marie.dupont@example.fr",
        email: Some("marie.dupont@example.fr"), contact_id: Some("445573087"), name: Some("Marie Dupont"),
        occurred_at: Some("2026-09-27T20:19:27+00:00") },
    Expected { fixture: "systeme-settings/contact-tag-added", source: Source::SystemeSettings, family: Family::TagAdded,
        event_type: Some("CONTACT_TAG_ADDED"), label: "Tag added", summary: "Tag added: Client",
        email: Some("marie.dupont@example.fr"), contact_id: Some("445573087"), name: Some("Marie Dupont"),
        occurred_at: Some("2026-09-27T20:20:27+00:00") },
    Expected { fixture: "systeme-settings/contact-tag-removed-nested", source: Source::SystemeSettings, family: Family::TagRemoved,
        event_type: Some("CONTACT_TAG_REMOVED"), label: "Tag removed", summary: "Tag removed: Client",
        email: Some("marie.dupont@example.fr"), contact_id: Some("445573087"), name: None,
        occurred_at: Some("2026-09-27T20:21:27+00:00") },
    Expected { fixture: "generic/form-signup", source: Source::Form, family: Family::Unknown,
        event_type: None, label: "Form", summary: "Form: 3 fields: email, name, plan",
        email: Some("Jane.Roe@example.com"), contact_id: None, name: None, occurred_at: None },
    Expected { fixture: "generic/plain-text", source: Source::Text, family: Family::Unknown,
        event_type: None, label: "Text", summary: "Text: ping from a monitoring job",
        email: None, contact_id: None, name: None, occurred_at: None },
    Expected { fixture: "generic/gzip-order", source: Source::Json, family: Family::Unknown,
        event_type: Some("order.created"), label: "Order created", summary: "Order created: Buyer@Example.com",
        email: Some("Buyer@Example.com"), contact_id: None, name: Some("Bob Buyer"), occurred_at: None },
    Expected { fixture: "generic/xss-tag-added", source: Source::SystemeAutomation, family: Family::TagAdded,
        event_type: Some("contact.tag.added"), label: "Tag added", summary: "Tag added: <img src=x onerror=alert(1)>",
        email: Some("xss+<script>alert(1)</script>@example.com"), contact_id: Some("7"),
        name: Some("<b>bold</b> javascript:alert(1)"), occurred_at: Some("2026-10-02T09:00:00+00:00") },
];

#[test]
fn every_fixture_decodes_as_expected() {
    let covered: Vec<&str> = TABLE.iter().map(|e| e.fixture).collect();
    for fixture in support::all_fixtures() {
        assert!(
            covered.contains(&fixture.name.as_str()),
            "{} has a row in the decode table",
            fixture.name
        );
    }
    for row in TABLE {
        let capture = decoded(row.fixture);
        let d = &capture.decoded;
        let at = row.fixture;
        assert_eq!(d.source, row.source, "{at}: source");
        assert_eq!(d.family, row.family, "{at}: family (badge)");
        assert_eq!(d.event_type.as_deref(), row.event_type, "{at}: event type");
        assert_eq!(d.label, row.label, "{at}: label");
        assert_eq!(d.summary, row.summary, "{at}: one-line summary");
        assert_eq!(
            d.contact_email.as_deref(),
            row.email,
            "{at}: email as it arrived"
        );
        assert_eq!(
            d.contact_key(),
            row.email.map(str::to_lowercase),
            "{at}: contacts group on the lower-cased email"
        );
        assert_eq!(d.contact_id.as_deref(), row.contact_id, "{at}: contact id");
        assert_eq!(d.contact_name.as_deref(), row.name, "{at}: contact name");
        assert_eq!(
            d.occurred_at.as_deref(),
            row.occurred_at,
            "{at}: when it happened"
        );
    }
}

#[test]
fn php_escapes_are_kept_on_the_wire_and_resolved_for_search() {
    let sale = decoded("systeme-automation/sale-completed");
    assert!(
        sale.raw
            .body
            .windows(13)
            .any(|w| w == br"cr\u00e9er un".as_slice()),
        "the wire bytes keep the \\u00e9 escape"
    );
    assert!(
        sale.search_text.contains("Comment créer un blog"),
        "search sees the decoded text"
    );
    let page = decoded("systeme-automation/page-visited");
    assert!(
        page.raw.body.windows(4).any(|w| w == br"\/ D".as_slice()),
        "wire keeps \\/"
    );
}

#[test]
fn the_account_owner_is_never_the_contact() {
    let body = br#"{"type":"contact.tag.added","data":{"tag":{"id":1,"name":"X"},"contact":{"id":5,"fields":[]}},"account":{"email":"owner@example.com"},"created_at":"2026-01-01T00:00:00+00:00"}"#;
    let capture = capture_of(
        vec![("Content-Type".into(), "application/json".into())],
        Bytes::from_static(body),
    );
    assert_eq!(
        capture.decoded.contact_email, None,
        "account.email belongs to the account owner"
    );
    assert_eq!(capture.decoded.contact_id.as_deref(), Some("5"));
}

#[test]
fn generic_json_finds_an_obvious_email() {
    let cases: &[(&[u8], Option<&str>)] = &[
        (br#"{"email":"A@B.co"}"#, Some("A@B.co")),
        (br#"{"contact":{"email":"c@d.io"}}"#, Some("c@d.io")),
        (br#"{"customer":{"email":"e@f.io"}}"#, Some("e@f.io")),
        (
            br#"{"data":{"subscriber":{"email":"g@h.io"}}}"#,
            Some("g@h.io"),
        ),
        (br#"{"account":{"email":"owner@x.io"}}"#, None),
        (br#"{"email":"not an email"}"#, None),
        (br#"[{"user_email":"i@j.io"}]"#, Some("i@j.io")),
    ];
    for (body, expected) in cases {
        let capture = capture_of(vec![], Bytes::copy_from_slice(body));
        assert_eq!(
            capture.decoded.contact_email.as_deref(),
            *expected,
            "email in {}",
            String::from_utf8_lossy(body)
        );
    }
}
