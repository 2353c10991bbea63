//! The UI's TypeScript types are generated from the API's Rust types, so the two cannot
//! drift. `make api-types` writes `ui/src/lib/api.generated.ts` (this test with
//! `UPDATE_API_TYPES=1`); otherwise this test fails while the file differs from what the
//! types say, and `make lint` runs it.

use std::any::TypeId;
use std::collections::BTreeMap;
use std::path::Path;

use hookscope_core::capture::body::BodyKind;
use hookscope_core::capture::card::{
    Card, Dated, EmailClicks, Enrolment, Optin, PageVisits, Purchase, WebinarSeat,
};
use hookscope_core::capture::decode::Family;
use hookscope_core::capture::diff::{
    AnyJson, BinaryDiff, BodyChanges, BodyDiff, Change as DiffChange, HeaderChange, HeadersDiff,
    Hunk, JsonDiff, Line, LineTag, PathChange, TextDiff_,
};
use hookscope_core::capture::facts::{Sale, Step};
use hookscope_core::capture::sender::Sender;
use hookscope_core::capture::shape::Change;
use hookscope_core::capture::signature::Verdict;
use hookscope_core::delivery::follow::FollowView;
use hookscope_core::delivery::replay::ReplayResult;
use hookscope_core::http::api::views::*;
use hookscope_core::service::health::{
    EndpointHealth, HealthReport, SystemeHealth, SystemeWebhookHealth,
};
use hookscope_core::service::probe::ProbeView;
use hookscope_core::store::alerts::{Alert, AlertKind, AlertRule, NewAlertRule};
use hookscope_core::store::contacts::{Contact, ContactFilter, ContactPage};
use hookscope_core::store::endpoints::{CannedResponse, Endpoint};
use hookscope_core::store::erasure::ErasureReport;
use hookscope_core::store::events::EventMeta;
use hookscope_core::store::events::cadence::{TypeCadence, VerdictCounts};
use hookscope_core::store::events::compare::{DiffSide, EventDiff, Previous, PreviousReason};
use hookscope_core::store::events::query::{EventFilter, EventPage};
use hookscope_core::store::forwards::{ForwardUpdate, ForwardView};
use hookscope_core::store::funnels::{FunnelFilter, FunnelReport, FunnelRow, Money, OfferRow};
use hookscope_core::store::indexer::IndexProgress;
use hookscope_core::store::retention::{LastRun, PolicyChange, PrunePreview, RetentionPolicy};
use hookscope_core::store::writer::StoreTrouble;
use hookscope_core::systeme::RemoteWebhook;
use hookscope_core::tunnel::TunnelState;
use ts_rs::{Config, TS};

const FILE: &str = "../../ui/src/lib/api.generated.ts";

/// Every type the API answers with or takes, by TypeScript name: its declaration, and the
/// names of the types it uses.
struct Declarations {
    cfg: Config,
    decls: BTreeMap<String, String>,
    ids: Vec<TypeId>,
    used: Vec<(String, TypeId, String)>,
}

impl Declarations {
    fn add<T: TS + 'static + ?Sized>(&mut self) -> &mut Self {
        let name = T::ident(&self.cfg);
        let docs = T::docs().unwrap_or_default();
        self.decls
            .insert(name.clone(), format!("{docs}export {}", T::decl(&self.cfg)));
        self.ids.push(TypeId::of::<T>());
        for dependency in T::dependencies(&self.cfg) {
            self.used
                .push((name.clone(), dependency.type_id, dependency.ts_name));
        }
        self
    }
}

fn generated() -> String {
    let mut all = Declarations {
        cfg: Config::new().with_large_int("number"),
        decls: BTreeMap::new(),
        ids: Vec::new(),
        used: Vec::new(),
    };
    all.add::<ApiErrorBody>()
        .add::<BodyKind>()
        .add::<CannedResponse>()
        .add::<Card>()
        .add::<Change>()
        .add::<FollowView>()
        .add::<Contact>()
        .add::<ContactFilter>()
        .add::<ContactPage>()
        .add::<ContactWithCard>()
        .add::<Dated>()
        .add::<EmailClicks>()
        .add::<Endpoint>()
        .add::<EndpointList>()
        .add::<EndpointView>()
        .add::<Enrolment>()
        .add::<EventFilter>()
        .add::<EventMeta>()
        .add::<EventPage>()
        .add::<Family>()
        .add::<ForwardAnswer>()
        .add::<ForwardUpdate>()
        .add::<ForwardView>()
        .add::<FunnelFilter>()
        .add::<FunnelReport>()
        .add::<FunnelRow>()
        .add::<Money>()
        .add::<OfferRow>()
        .add::<Optin>()
        .add::<PageVisits>()
        .add::<Purchase>()
        .add::<RegistrationView>()
        .add::<RemoteWebhook>()
        .add::<ReplayHistory>()
        .add::<ReplayOutcome>()
        .add::<ReplayOutcomes>()
        .add::<ReplayResult>()
        .add::<Sale>()
        .add::<Sender>()
        .add::<ShapeList>()
        .add::<ShapePath>()
        .add::<ShapeSummary>()
        .add::<ShapeView>()
        .add::<Status>()
        .add::<Step>()
        .add::<StoreTrouble>()
        .add::<SystemeView>()
        .add::<SystemeWebhookList>()
        .add::<SystemeWebhookView>()
        .add::<Template>()
        .add::<TemplateList>()
        .add::<TestEventAnswer>()
        .add::<TestEventRequest>()
        .add::<TunnelState>()
        .add::<TunnelView>()
        .add::<Verdict>()
        .add::<WebinarSeat>()
        .add::<Jsonish>()
        .add::<IndexProgress>()
        .add::<ErasureReport>()
        .add::<RetentionPolicy>()
        .add::<PolicyChange>()
        .add::<PrunePreview>()
        .add::<LastRun>()
        .add::<StreamEvent>()
        .add::<Alert>()
        .add::<AlertKind>()
        .add::<AlertRule>()
        .add::<NewAlertRule>()
        .add::<AlertList>()
        .add::<Acknowledge>()
        .add::<Acknowledged>()
        .add::<AlertRuleList>()
        .add::<ProbeView>()
        .add::<HealthReport>()
        .add::<EndpointHealth>()
        .add::<SystemeHealth>()
        .add::<SystemeWebhookHealth>()
        .add::<TypeCadence>()
        .add::<VerdictCounts>()
        .add::<AnyJson>()
        .add::<BinaryDiff>()
        .add::<BodyChanges>()
        .add::<BodyDiff>()
        .add::<DiffChange>()
        .add::<DiffSide>()
        .add::<EventDiff>()
        .add::<HeaderChange>()
        .add::<HeadersDiff>()
        .add::<Hunk>()
        .add::<JsonDiff>()
        .add::<Line>()
        .add::<LineTag>()
        .add::<PathChange>()
        .add::<Previous>()
        .add::<PreviousReason>()
        .add::<TextDiff_>();
    let missing: Vec<String> = all
        .used
        .iter()
        .filter(|(_, id, _)| !all.ids.contains(id))
        .map(|(user, _, name)| format!("{name} (used by {user})"))
        .collect();
    assert!(
        missing.is_empty(),
        "types used by the API but not declared here: {missing:?}"
    );
    let mut out = String::from(
        "// Generated from the Rust types of Hookscope's API by `make api-types`\n\
         // (src-tauri/core/tests/api_types.rs). Do not edit: change the Rust types.\n\n",
    );
    for decl in all.decls.values() {
        out.push_str(decl);
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[test]
fn the_uis_types_are_the_apis() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FILE);
    let wanted = generated();
    if std::env::var_os("UPDATE_API_TYPES").is_some() {
        std::fs::write(&path, &wanted).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == wanted,
        "{} is out of date with the API's Rust types: run `make api-types`",
        path.display()
    );
}
