//! `/api/v1/*` handlers, `/healthz`, and the JSON 404.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value as Json_};

use super::access::Identity;
use super::error::{ApiError, ApiJson};
use super::{Daemon, DeclareRequest};
use crate::engine::{Decision, Resolution};
use crate::timeline::notes::NoteFacts;

type ApiResult<T> = Result<T, ApiError>;

/// Who a write is by, as the token allows: whose roles count, and the
/// admin acting for them if any. `required`: the legacy token must name
/// someone (a decision, a note); else it is "api".
fn who(id: &Identity, by: Option<&str>, required: bool) -> ApiResult<(String, Option<String>)> {
    match id.acting(by) {
        Ok(acting) => Ok(acting),
        Err(_) if id.legacy && !required => Ok((id.user.clone(), None)),
        Err(e) if id.legacy => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            e,
        )),
        Err(e) => Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", e)),
    }
}

/// The actor the timeline records: "A for B" when admin A acts for B.
fn recorded((by, via): (String, Option<String>)) -> String {
    crate::engine::actor_of(&by, via.as_deref())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateIncident {
    runbook: String,
    #[serde(default)]
    inputs: Json_,
    severity: Option<String>,
    /// Who declares (default "api").
    by: Option<String>,
    /// Run on the built-in simulator, approvals automatic.
    #[serde(default)]
    drill: bool,
}

pub(super) async fn create_incident(
    State(d): State<Daemon>,
    Extension(caller): Extension<Identity>,
    ApiJson(body): ApiJson<CreateIncident>,
) -> ApiResult<Response> {
    let by = recorded(who(&caller, body.by.as_deref(), false)?);
    let id = d
        .declare(DeclareRequest {
            runbook: body.runbook,
            inputs: body.inputs,
            severity: body.severity,
            by,
            token: Some(caller.label.clone()),
            drill: body.drill,
            channel: None,
        })
        .await?;
    let url = format!("/incidents/{id}");
    Ok((
        StatusCode::CREATED,
        [(
            axum::http::header::LOCATION,
            format!("/api/v1/incidents/{id}"),
        )],
        Json(json!({"id": id, "url": url})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreatePlan {
    runbook: String,
    #[serde(default)]
    inputs: Json_,
    /// Who asks (default "api").
    by: Option<String>,
    /// Plan against the built-in simulator instead of the live platforms.
    #[serde(default)]
    simulated: bool,
}

/// Starts a plan; 202 with where its report will be.
pub(super) async fn create_plan(
    State(d): State<Daemon>,
    Extension(caller): Extension<Identity>,
    ApiJson(body): ApiJson<CreatePlan>,
) -> ApiResult<Response> {
    let by = recorded(who(&caller, body.by.as_deref(), false)?);
    let id = d
        .plan(super::PlanRequest {
            runbook: body.runbook,
            inputs: body.inputs,
            by,
            simulated: body.simulated,
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        [(axum::http::header::LOCATION, format!("/api/v1/plans/{id}"))],
        Json(json!({"id": id, "status": "running", "url": format!("/plans/{id}")})),
    )
        .into_response())
}

pub(super) async fn get_plan(
    State(d): State<Daemon>,
    Path(id): Path<String>,
) -> ApiResult<Json<Json_>> {
    d.store()
        .plan(&id)
        .map_err(super::OpError::from)?
        .map(Json)
        .ok_or_else(|| super::OpError::NotFound(format!("no plan {id}")).into())
}

fn incident_json(d: &Daemon, id: &str) -> ApiResult<Json_> {
    let snap = d.store().snapshot(id).map_err(super::OpError::from)?;
    snapshot_json(d, &snap)
}

fn snapshot_json(d: &Daemon, snap: &crate::store::Snapshot) -> ApiResult<Json_> {
    let events = d
        .store()
        .events(&snap.incident.id)
        .map_err(super::OpError::from)?;
    Ok(crate::timeline::incident_json(
        snap,
        &events,
        d.engine().now(),
    ))
}

pub(super) async fn list_incidents(State(d): State<Daemon>) -> ApiResult<Json<Json_>> {
    let list = d.store().incidents().map_err(super::OpError::from)?;
    let items = list
        .iter()
        .map(|i| incident_json(&d, &i.id))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(json!({"incidents": items})))
}

pub(super) async fn get_incident(
    State(d): State<Daemon>,
    Path(id): Path<String>,
) -> ApiResult<Json<Json_>> {
    // Beside the plan made for it shortly before, if there was one. Only
    // here, not in the list: it reads the runbook and every stored plan.
    let store = d.store();
    let snap = store.snapshot(&id).map_err(super::OpError::from)?;
    let mut out = snapshot_json(&d, &snap)?;
    let engine = d.engine();
    if let Ok(rb) = engine.runbook_of(&snap.incident) {
        let lib = engine.library();
        if let Some(c) = crate::plan::compare::against_last_plan(store, &rb, &snap, |i, a| {
            lib.catalog.is_write(i, a)
        })
        .map_err(super::OpError::from)?
        {
            out["plan"] = c;
        }
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
pub(super) struct TimelineQuery {
    format: Option<String>,
}

/// Every event in order, as JSON (default) or rendered as `quench
/// timeline --format` renders it (text, markdown, html).
pub(super) async fn timeline(
    State(d): State<Daemon>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<TimelineQuery>,
) -> ApiResult<Response> {
    let store = d.store();
    let inc = store.incident(&id).map_err(super::OpError::from)?;
    let events = store.events(&id).map_err(super::OpError::from)?;
    let (ctype, body) = match q.format.as_deref().unwrap_or("json") {
        "json" => return Ok(Json(crate::timeline::events_json(&inc, &events)).into_response()),
        "text" => (
            "text/plain; charset=utf-8",
            crate::timeline::render_text(&inc, &events),
        ),
        "markdown" => (
            "text/markdown; charset=utf-8",
            crate::timeline::postmortem::render(&d.review(&id, usize::MAX)?)
                .map_err(|e| super::OpError::Internal(format!("rendering the postmortem: {e}")))?,
        ),
        "html" => (
            "text/html; charset=utf-8",
            crate::timeline::page::incident(
                &d.review(&id, crate::timeline::review::EVENTS_SHOWN)?,
                crate::timeline::page::PageMode::STANDALONE,
            )
            .map_err(|e| super::OpError::Internal(format!("rendering the page: {e}")))?,
        ),
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("format \"{other}\" is not one of json, text, markdown, html"),
            ))
        }
    };
    Ok(([(axum::http::header::CONTENT_TYPE, ctype)], body).into_response())
}

/// `quench audit verify` over the daemon's store.
pub(super) async fn audit(
    State(d): State<Daemon>,
    Path(id): Path<String>,
) -> ApiResult<Json<Json_>> {
    let report = d.store().audit(&id).map_err(super::OpError::from)?;
    Ok(Json(json!({"intact": report.intact(), "report": report})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApprovalBody {
    approve: bool,
    /// Default: the token's user; only an admin token may name another.
    by: Option<String>,
    note: Option<String>,
}

pub(super) async fn approval(
    State(d): State<Daemon>,
    Extension(caller): Extension<Identity>,
    Path((id, step)): Path<(String, String)>,
    ApiJson(body): ApiJson<ApprovalBody>,
) -> ApiResult<Json<Json_>> {
    let decision = if body.approve {
        Decision::Approve
    } else {
        Decision::Reject
    };
    decide(&d, &caller, &id, &step, decision, body.by, body.note).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DoneBody {
    by: Option<String>,
    note: Option<String>,
}

pub(super) async fn done(
    State(d): State<Daemon>,
    Extension(caller): Extension<Identity>,
    Path((id, step)): Path<(String, String)>,
    ApiJson(body): ApiJson<DoneBody>,
) -> ApiResult<Json<Json_>> {
    decide(&d, &caller, &id, &step, Decision::Done, body.by, body.note).await
}

async fn decide(
    d: &Daemon,
    caller: &Identity,
    id: &str,
    step: &str,
    decision: Decision,
    by: Option<String>,
    note: Option<String>,
) -> ApiResult<Json<Json_>> {
    let (by, via) = who(caller, by.as_deref(), true)?;
    d.resolve(
        id,
        Resolution {
            step: step.to_string(),
            decision,
            by: by.clone(),
            via: via.clone(),
            token: Some(caller.label.clone()),
            note,
        },
    )
    .await?;
    let word = match decision {
        Decision::Approve => "approved",
        Decision::Reject => "rejected",
        Decision::Done => "done",
    };
    Ok(Json(
        json!({"incident": id, "step": step, "decision": word, "by": by, "via": via}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoteBody {
    text: String,
    by: Option<String>,
    moment: Option<String>,
    #[serde(default)]
    pause: bool,
    #[serde(default)]
    resume: bool,
    exception: Option<String>,
}

pub(super) async fn note(
    State(d): State<Daemon>,
    Extension(caller): Extension<Identity>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NoteBody>,
) -> ApiResult<Response> {
    let by = recorded(who(&caller, body.by.as_deref(), true)?);
    let facts = NoteFacts {
        moment: body.moment,
        pause: body.pause,
        resume: body.resume,
        exception: body.exception,
    };
    let ev = d
        .note(&id, &body.text, &by, Some(&caller.label), &facts)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"incident": id, "seq": ev.seq, "kind": ev.kind, "at": ev.at})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct KpiQuery {
    since: Option<String>,
}

/// The KPIs `quench kpis --json` prints, over the daemon's store.
pub(super) async fn kpis(
    State(d): State<Daemon>,
    axum::extract::Query(q): axum::extract::Query<KpiQuery>,
) -> ApiResult<Json<Json_>> {
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => Some(crate::timeline::kpis::parse_since(s).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("since: {e}"),
            )
        })?),
    };
    Ok(Json(d.kpis(since)?))
}

/// The latest version of each notice, with its text and approval.
pub(super) async fn notices(
    State(d): State<Daemon>,
    Path(id): Path<String>,
) -> ApiResult<Json<Json_>> {
    let store = d.store();
    store.incident(&id).map_err(super::OpError::from)?;
    let drafts =
        crate::notices::lifecycle::latest(store.notices(&id).map_err(super::OpError::from)?);
    Ok(Json(json!({"incident": id, "notices": drafts})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EditBody {
    body: String,
    by: Option<String>,
}

pub(super) async fn edit_notice(
    State(d): State<Daemon>,
    Extension(caller): Extension<Identity>,
    Path((id, key)): Path<(String, String)>,
    ApiJson(b): ApiJson<EditBody>,
) -> ApiResult<Response> {
    let by = recorded(who(&caller, b.by.as_deref(), true)?);
    let (draft, was) = d
        .edit_notice(&id, &key, b.body, &by, Some(&caller.label))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"incident": id, "notice": key, "version": draft.version, "replaces": was, "ready": false})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SentBody {
    by: Option<String>,
}

pub(super) async fn notice_sent(
    State(d): State<Daemon>,
    Extension(caller): Extension<Identity>,
    Path((id, key)): Path<(String, String)>,
    ApiJson(b): ApiJson<SentBody>,
) -> ApiResult<Response> {
    let by = recorded(who(&caller, b.by.as_deref(), true)?);
    let ev = d.notice_sent(&id, &key, &by, Some(&caller.label)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"incident": id, "notice": key, "seq": ev.seq, "message": ev.message})),
    )
        .into_response())
}

pub(super) async fn healthz(State(d): State<Daemon>) -> Response {
    // Healthy means the store can take a write now: a probe is written,
    // flushed and read back, so a full disk or a corrupted store shows
    // here rather than at the next incident's first step.
    let store = d.store();
    match store
        .health()
        .await
        .and_then(|()| store.incidents().map_err(|e| e.to_string()))
    {
        Ok(list) => {
            let mut body = json!({
                "status": "ok",
                "incidents": list.len(),
                "running": d.active_drivers(),
                "uptime_s": d.uptime().as_secs(),
                "version": env!("CARGO_PKG_VERSION"),
                "data_dir": store.path(),
            });
            // On a shared store: which of the daemons this is, and who leads.
            if let Some(Ok(leader)) = store.leader().await {
                body["role"] = json!(if store.leads() { "leader" } else { "standby" });
                body["epoch"] = json!(leader.epoch);
                body["leader"] = json!(leader.live.then_some(leader.holder));
            }
            Json(body).into_response()
        }
        Err(why) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store", why).into_response(),
    }
}

/// The REST API as OpenAPI 3.1, kept beside the routes; `tests/it/openapi.rs`
/// checks every route and every status it answers against it.
pub(super) async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see DESIGN.md \"Daemon endpoints\"",
    )
}
