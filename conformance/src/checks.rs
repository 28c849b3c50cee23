//! The checks: each one works on providers of its own (custom providers named by the run) and
//! says what it verifies, and which Bifrost generations are known to fail it and why.

use std::future::Future;
use std::pin::Pin;

use serde_json::{Value, json};

use super::target::{Answer, Target};
use super::{Check, Profile};
use bifrost_providers_client::types::{EnvVar, Key};

pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Judged> + Send + 'a>>;

/// What a check that cannot be skipped finds.
type Checked = Result<(), String>;

/// What a check finds when its precondition may be out of the target's reach.
pub type Judged = Result<(), Failure>;

/// Why a check did not pass: the target broke the rule, or it cannot meet the check's
/// precondition (then nothing is judged, and the run says why).
#[derive(Debug)]
pub enum Failure {
    Fail(String),
    Skip(String),
}

impl From<String> for Failure {
    fn from(why: String) -> Self {
        Failure::Fail(why)
    }
}

impl From<&str> for Failure {
    fn from(why: &str) -> Self {
        Failure::Fail(why.to_string())
    }
}

/// A long secret, a short one, and their redacted forms.
const LONG: &str = "sk-conformance-0123456789abcdef";
const LONG_MASK: &str = "sk-c************************cdef";
const SHORT: &str = "abc123";

const G1: Profile = Profile::G1;
const G2: Profile = Profile::G2;

macro_rules! check {
    ($name:literal, $about:literal, [$(($p:expr, $why:literal)),*], $f:ident) => {
        Check {
            name: $name,
            about: $about,
            known_in: &[$(($p, $why)),*],
            run: |t| Box::pin(async move { $f(t).await.map_err(Failure::from) }),
        }
    };
    ($name:literal, $about:literal, [$(($p:expr, $why:literal)),*], skippable $f:ident) => {
        Check {
            name: $name,
            about: $about,
            known_in: &[$(($p, $why)),*],
            run: |t| Box::pin($f(t)),
        }
    };
}

pub static ALL: &[Check] = &[
    check!(
        "auth.token_required",
        "with an admin token, a request without it or with a wrong one is a 401 with the contract's error body, and changes nothing",
        [],
        skippable token_required
    ),
    check!(
        "upsert.put_creates",
        "PUT to a name that does not exist creates the provider; GET shows what PUT answered",
        [],
        put_creates
    ),
    check!(
        "upsert.post_creates_then_conflicts",
        "POST creates a provider; a second POST of the name is a 409",
        [],
        post_creates_then_conflicts
    ),
    check!(
        "replacement.absent_blocks_take_defaults",
        "a PUT is the whole state: a block left out takes its default, never its old value",
        [
            (G1, "Bifrost stores an absent network_config as zeros"),
            (G2, "Bifrost stores an absent network_config as zeros")
        ],
        absent_blocks_take_defaults
    ),
    check!(
        "keys.inline_set_replaced_by_id",
        "keys inside a PUT replace the key set, matched by id; a key without id gets one",
        [(G2, "Bifrost v1.5+ ignores keys in a provider PUT")],
        inline_set_replaced_by_id
    ),
    check!(
        "keys.left_out_stay",
        "a PUT without keys leaves the stored keys alone",
        [(G1, "Bifrost v1.4 deletes every key when keys is left out")],
        keys_left_out_stay
    ),
    check!(
        "keys.sub_resource",
        "POST, GET, PUT and DELETE of one key under /keys, and the list",
        [(G1, "Bifrost v1.4 has no /keys")],
        sub_resource
    ),
    check!(
        "keys.models_per_generation",
        "models: [\"*\"] under /keys is every model, shown as [] inside the provider body",
        [],
        skippable models_per_generation
    ),
    check!(
        "keys.new_key_disabled_kept",
        "a new key sent with enabled: false stays disabled",
        [(G1, "Bifrost v1.4 forces new keys on")],
        new_key_disabled_kept
    ),
    check!(
        "secrets.bare_string",
        "a secret sent as a bare string is accepted and shown redacted",
        [],
        bare_string
    ),
    check!(
        "secrets.ref_type_object",
        "a secret sent as {value, ref, type} (v1.6) is read as the reference it is",
        [
            (G1, "Bifrost v1.4 stores the object as raw text"),
            (G2, "Bifrost v1.5 stores the object as raw text")
        ],
        ref_type_object
    ),
    check!(
        "secrets.unresolved_reference_stored",
        "an env. reference the server cannot resolve is accepted and shown as a reference",
        [],
        unresolved_reference_stored
    ),
    check!(
        "secrets.key_references_unresolved",
        "env. references in every secret field of a key (value; azure, vertex and bedrock fields) are stored and shown as references, never resolved",
        [],
        skippable key_references_unresolved
    ),
    check!(
        "secrets.proxy_references_unresolved",
        "env. references in the proxy password and ca_cert_pem and in network_config.ca_cert_pem are stored and shown as references, never resolved",
        [
            (
                G1,
                "Bifrost v1.4 takes proxy and network secrets as literals and shows them as <REDACTED>"
            ),
            (
                G2,
                "Bifrost before v1.5.0-prerelease6 takes proxy and network secrets as literals and shows them as <REDACTED>"
            )
        ],
        proxy_references_unresolved
    ),
    check!(
        "secrets.env_var_object",
        "a secret sent as {value, env_var, from_env} (G1/G2), new or legacy (value equal to env_var), is read as the reference it is",
        [],
        env_var_object
    ),
    check!(
        "secrets.env_var_without_prefix",
        "a secret sent as {value: \"\", env_var: NAME, from_env: true}, NAME without env., is read as env.NAME",
        [
            (
                G1,
                "Bifrost v1.4 keeps env_var as given, without the env. prefix"
            ),
            (
                G2,
                "Bifrost v1.5 keeps env_var as given, without the env. prefix"
            )
        ],
        env_var_without_prefix
    ),
    check!(
        "secrets.vault_reference",
        "a vault. reference, as a bare string and as {value, ref, type: vault}, is stored and shown as the reference, never as a value",
        [
            (
                G1,
                "Bifrost v1.4 has no vault references: vault.… is a literal secret"
            ),
            (
                G2,
                "Bifrost v1.5 has no vault references: vault.… is a literal secret"
            )
        ],
        vault_reference
    ),
    check!(
        "secrets.unknown_form_refused",
        "a secret in a form no generation accepts (a number, an array) is a 400 naming the field, and nothing is stored",
        [
            (
                G1,
                "Bifrost stores a secret of another JSON form as its raw text"
            ),
            (
                G2,
                "Bifrost stores a secret of another JSON form as its raw text"
            )
        ],
        unknown_form_refused
    ),
    check!(
        "secrets.unresolved_reference_status",
        "a provider whose reference does not resolve where the server runs has status error, mirrored in provider_status",
        [
            (G1, "Bifrost gives no error status for an unset variable"),
            (G2, "Bifrost gives no error status for an unset variable")
        ],
        unresolved_reference_status
    ),
    check!(
        "redaction.mask_shapes",
        "responses carry 4 + 24 * + 4 for long secrets, that many * for short ones, <REDACTED> for proxy secrets",
        [(
            G1,
            "Bifrost v1.4.0 to v1.4.10 show proxy secrets in clear or as ********"
        )],
        mask_shapes
    ),
    check!(
        "redaction.round_trip_keeps_secrets",
        "a GET body edited and PUT back keeps every secret (the masks stay the same)",
        [],
        round_trip_keeps_secrets
    ),
    check!(
        "redaction.mismatched_mask_refused",
        "a value that looks redacted (4 + 24 * + 4, all *, [REDACTED], <REDACTED>) but is not the stored secret's mask is a 400, and nothing changes",
        [
            (G1, "Bifrost stores the mask as the credential"),
            (G2, "Bifrost stores the mask as the credential")
        ],
        mismatched_mask_refused
    ),
    check!(
        "redaction.foreign_mask_refused",
        "the current mask of another key's secret, sent for this key, is a 400 and nothing is stored",
        [
            (G1, "Bifrost stores the mask as the credential"),
            (G2, "Bifrost stores the mask as the credential")
        ],
        foreign_mask_refused
    ),
    check!(
        "redaction.proxy_secrets_kept",
        "proxy password and ca_cert_pem show as <REDACTED>; sent back so they keep the stored secrets (history names no change to them); <REDACTED> with nothing stored is a 400",
        [],
        skippable proxy_secrets_kept
    ),
    check!(
        "validation.error_body",
        "a refused value gets a 400 with the contract's error body and changes nothing",
        [],
        error_body
    ),
    check!(
        "validation.error_code_and_param",
        "errors name a stable code and the field at fault",
        [
            (G1, "Bifrost's errors carry no code or param"),
            (G2, "Bifrost's errors carry no code or param")
        ],
        error_code_and_param
    ),
    check!(
        "validation.unknown_field_refused",
        "a field no Bifrost generation knows is a 400",
        [
            (G1, "Bifrost ignores unknown fields"),
            (G2, "Bifrost ignores unknown fields")
        ],
        unknown_field_refused
    ),
    check!(
        "validation.null_is_absent",
        "null for an optional field means the field is left out",
        [],
        null_is_absent
    ),
    check!(
        "validation.cross_field_rules",
        "concurrency above buffer_size, and a changed base_provider_type, are 400s",
        [],
        cross_field_rules
    ),
    check!(
        "etag.if_match",
        "ETag on responses; If-Match with a stale tag is a 412 and changes nothing; the current tag succeeds",
        [(G1, "Bifrost has no ETag"), (G2, "Bifrost has no ETag")],
        if_match
    ),
    check!(
        "etag.if_match_delete",
        "If-Match with a stale tag on a provider DELETE is a 412 and the provider stays; the current tag deletes it",
        [(G1, "Bifrost has no ETag"), (G2, "Bifrost has no ETag")],
        if_match_delete
    ),
    check!(
        "etag.on_every_response",
        "every provider response (POST, GET, PUT, DELETE) and key response (POST, GET, PUT, DELETE under /keys) carries an ETag",
        [(G1, "Bifrost has no ETag"), (G2, "Bifrost has no ETag")],
        on_every_response
    ),
    check!(
        "etag.every_write_changes_it",
        "every accepted write changes the ETag, a change of a secret alone included, and a refused one does not",
        [],
        skippable every_write_changes_etag
    ),
    check!(
        "etag.key_if_match",
        "key responses carry an ETag that every key write changes; If-Match with a stale tag on a key PUT or DELETE is a 412 and changes nothing",
        [(G2, "Bifrost has no ETag")],
        skippable key_if_match
    ),
    check!(
        "etag.key_after_each_write",
        "a key's ETag is answered by every kind of write (POST and PUT under /keys, a provider PUT, a key DELETE), changes with each, and is what a GET of the key then shows",
        [],
        skippable key_after_each_write
    ),
    check!(
        "etag.if_none_match_creates_only",
        "If-None-Match: * on PUT creates, and is a 412 when the provider exists",
        [
            (G1, "Bifrost has no conditional requests"),
            (G2, "Bifrost has no conditional requests")
        ],
        if_none_match_creates_only
    ),
    check!(
        "revisions.history_and_rollback",
        "each write is a revision in the provider's history (newest first, with action and changed fields); a rollback brings back the earlier state, secrets included",
        [
            (G1, "Bifrost has no history"),
            (G2, "Bifrost has no history")
        ],
        history_and_rollback
    ),
    check!(
        "notfound.get_missing",
        "GET of a provider that does not exist is a 404",
        [],
        get_missing
    ),
    check!(
        "notfound.delete_missing",
        "DELETE of a provider that does not exist is a 404",
        [
            (G1, "Bifrost v1.4.10+ answers 200"),
            (G2, "Bifrost answers 200")
        ],
        delete_missing
    ),
    check!(
        "notfound.key_missing",
        "GET of a key the provider does not have is a 404",
        [],
        skippable key_missing
    ),
];

/// `body` with this run's custom provider block (the name is not a standard one).
fn custom(mut body: Value) -> Value {
    body["custom_provider_config"] = json!({"base_provider_type": "openai"});
    body
}

fn status(answer: &Answer, want: u16, what: &str) -> Checked {
    if answer.status == want {
        return Ok(());
    }
    Err(format!(
        "{what}: expected {want}, got {} {}",
        answer.status,
        shown(&answer.body)
    ))
}

fn equal(got: &Value, want: &Value, what: &str) -> Checked {
    if got == want {
        return Ok(());
    }
    Err(format!("{what}: expected {want}, got {got}"))
}

/// A body cut short for a message.
fn shown(body: &Value) -> String {
    let text = body.to_string();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// A created provider with one key of each secret length, through PUT.
async fn created(t: &Target, keys: Value) -> Result<(String, Value), String> {
    let name = t.fresh_name();
    let answer = t.put(&name, &custom(json!({ "keys": keys }))).await?;
    status(&answer, 200, "creating a provider with PUT")?;
    Ok((name, answer.body))
}

async fn put_creates(t: &Target) -> Checked {
    let (name, written) = created(t, json!([{"name": "k", "value": {"value": LONG}}])).await?;
    let read = t.get(&name).await?;
    status(&read, 200, "GET after PUT")?;
    equal(&read.body, &written, "GET shows what PUT answered")?;
    // The typed client reads it too.
    let typed = t
        .client
        .get_provider()
        .provider(name.as_str())
        .send()
        .await
        .map_err(|e| format!("typed GET: {e}"))?
        .into_inner();
    equal(&json!(typed.name), &json!(name), "typed GET name")
}

async fn post_creates_then_conflicts(t: &Target) -> Checked {
    let name = t.fresh_name();
    let body = custom(json!({"provider": name}));
    let first = t.call("POST", "/api/providers", Some(&body), &[]).await?;
    status(&first, 200, "first POST")?;
    let second = t.call("POST", "/api/providers", Some(&body), &[]).await?;
    status(&second, 409, "second POST of the same name")
}

async fn absent_blocks_take_defaults(t: &Target) -> Checked {
    let name = t.fresh_name();
    let full = custom(json!({
        "network_config": {"base_url": "https://upstream.example/v1", "max_retries": 3,
                           "default_request_timeout_in_seconds": 90},
        "concurrency_and_buffer_size": {"concurrency": 7, "buffer_size": 70},
        "send_back_raw_request": true
    }));
    status(&t.put(&name, &full).await?, 200, "full PUT")?;
    let bare = t.put(&name, &custom(json!({}))).await?;
    status(&bare, 200, "PUT of the custom block only")?;
    let n = &bare.body["network_config"];
    equal(
        &n["default_request_timeout_in_seconds"],
        &json!(30),
        "default timeout",
    )?;
    equal(&n["max_retries"], &json!(0), "default max_retries")?;
    equal(
        &n["retry_backoff_initial"],
        &json!(500),
        "default initial backoff",
    )?;
    equal(&n["retry_backoff_max"], &json!(5000), "default max backoff")?;
    equal(
        &bare.body["concurrency_and_buffer_size"],
        &json!({"concurrency": 1000, "buffer_size": 5000}),
        "default concurrency",
    )?;
    equal(
        &bare.body["send_back_raw_request"],
        &json!(false),
        "send_back_raw_request",
    )
}

async fn inline_set_replaced_by_id(t: &Target) -> Checked {
    let (name, first) = created(
        t,
        json!([{"id": "bfc-a", "name": "a", "value": LONG}, {"id": "bfc-b", "name": "b", "value": SHORT}]),
    )
    .await?;
    let mut body = first.clone();
    body["keys"] =
        json!([first["keys"][0].clone(), {"name": "c", "value": "sk-third-key-0123456789"}]);
    body["keys"][0]["weight"] = json!(2.5);
    let after = t.put(&name, &body).await?;
    status(&after, 200, "PUT with an edited key set")?;
    let keys = after.body["keys"].as_array().cloned().unwrap_or_default();
    equal(&json!(keys.len()), &json!(2), "keys after the PUT")?;
    equal(&keys[0]["id"], &json!("bfc-a"), "the kept key's id")?;
    equal(&keys[0]["weight"], &json!(2.5), "the kept key's edit")?;
    if keys[1]["id"].as_str().is_none_or(str::is_empty) {
        return Err(format!(
            "a key sent without id got none: {}",
            shown(&keys[1])
        ));
    }
    Ok(())
}

async fn keys_left_out_stay(t: &Target) -> Checked {
    let (name, first) = created(t, json!([{"name": "a", "value": LONG}])).await?;
    let after = t
        .put(
            &name,
            &custom(json!({"network_config": {"max_retries": 1}})),
        )
        .await?;
    status(&after, 200, "PUT without keys")?;
    let listed = t
        .call("GET", &format!("/api/providers/{name}/keys"), None, &[])
        .await?;
    let ids = |v: &Value| -> Vec<Value> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|k| k["id"].clone())
            .collect()
    };
    let stored = if listed.status == 200 {
        ids(&listed.body["keys"])
    } else {
        ids(&after.body["keys"])
    };
    equal(
        &json!(stored),
        &json!(ids(&first["keys"])),
        "the keys after a PUT without keys",
    )
}

async fn sub_resource(t: &Target) -> Checked {
    let (name, _) = created(t, json!([])).await?;
    let key = Key {
        name: "sub".into(),
        value: Some(EnvVar::from(LONG)),
        models: vec!["*".into()],
        ..Default::default()
    };
    let made = t
        .client
        .create_provider_key()
        .provider(name.as_str())
        .body(key)
        .send()
        .await
        .map_err(|e| format!("POST /keys: {e}"))?
        .into_inner();
    let id = made.id.clone().ok_or("the created key has no id")?;
    equal(
        &json!(made.value.as_ref().map(|v| v.value.clone())),
        &json!(LONG_MASK),
        "created key's redacted value",
    )?;
    let path = format!("/api/providers/{name}/keys/{id}");
    let mut edit = t.call("GET", &path, None, &[]).await?;
    status(&edit, 200, "GET /keys/{id}")?;
    edit.body["weight"] = json!(4.0);
    let put = t.call("PUT", &path, Some(&edit.body), &[]).await?;
    status(&put, 200, "PUT /keys/{id}")?;
    equal(&put.body["weight"], &json!(4.0), "PUT /keys/{id} weight")?;
    equal(
        &put.body["value"]["value"],
        &json!(LONG_MASK),
        "the redacted value kept through PUT /keys/{id}",
    )?;
    let list = t
        .call("GET", &format!("/api/providers/{name}/keys"), None, &[])
        .await?;
    status(&list, 200, "GET /keys")?;
    equal(&list.body["total"], &json!(1), "GET /keys total")?;
    let deleted = t.call("DELETE", &path, None, &[]).await?;
    status(&deleted, 200, "DELETE /keys/{id}")?;
    equal(
        &deleted.body["id"],
        &json!(id),
        "DELETE answers the deleted key",
    )?;
    status(
        &t.call("GET", &path, None, &[]).await?,
        404,
        "GET of the deleted key",
    )
}

/// Skips a check on a target without the `/keys` sub-resource (Bifrost v1.4): the list of
/// `name`'s keys must answer.
async fn keys_served(t: &Target, name: &str) -> Judged {
    let list = t
        .call("GET", &format!("/api/providers/{name}/keys"), None, &[])
        .await?;
    if list.status != 200 || !list.body["keys"].is_array() {
        return Err(Failure::Skip("the target has no /keys sub-resource".into()));
    }
    Ok(())
}

async fn models_per_generation(t: &Target) -> Judged {
    let (name, first) = created(t, json!([])).await?;
    keys_served(t, &name).await?;
    if !first["keys"].is_array() {
        return Err(Failure::Skip(
            "the target shows no keys in a provider body (Bifrost v1.5+)".into(),
        ));
    }
    let body = json!({"name": "all", "value": LONG, "models": ["*"]});
    let made = t
        .call(
            "POST",
            &format!("/api/providers/{name}/keys"),
            Some(&body),
            &[],
        )
        .await?;
    status(&made, 200, "POST /keys")?;
    equal(&made.body["models"], &json!(["*"]), "models under /keys")?;
    let provider = t.get(&name).await?;
    Ok(equal(
        &provider.body["keys"][0]["models"],
        &json!([]),
        "every model, inside the provider body",
    )?)
}

async fn new_key_disabled_kept(t: &Target) -> Checked {
    let (_, made) = created(t, json!([{"name": "off", "value": LONG, "enabled": false}])).await?;
    equal(
        &made["keys"][0]["enabled"],
        &json!(false),
        "enabled of a new disabled key",
    )
}

async fn bare_string(t: &Target) -> Checked {
    let (_, made) = created(t, json!([{"name": "bare", "value": LONG}])).await?;
    equal(
        &made["keys"][0]["value"]["value"],
        &json!(LONG_MASK),
        "a bare-string secret, redacted",
    )
}

async fn ref_type_object(t: &Target) -> Checked {
    let (_, made) = created(
        t,
        json!([{"name": "ref", "value": {"value": "", "ref": "env.BFC_CONFORMANCE_REF", "type": "env"}}]),
    )
    .await?;
    equal(
        &made["keys"][0]["value"]["env_var"],
        &json!("env.BFC_CONFORMANCE_REF"),
        "the reference of a {value, ref, type} secret",
    )
}

async fn unresolved_reference_stored(t: &Target) -> Checked {
    let (_, made) = created(
        t,
        json!([{"name": "env", "value": "env.BFC_CONFORMANCE_SURELY_UNSET"}]),
    )
    .await?;
    let value = &made["keys"][0]["value"];
    equal(
        &value["env_var"],
        &json!("env.BFC_CONFORMANCE_SURELY_UNSET"),
        "env_var",
    )?;
    equal(&value["from_env"], &json!(true), "from_env")?;
    equal(
        &value["value"],
        &json!(""),
        "the value of an unresolved reference",
    )
}

async fn env_var_object(t: &Target) -> Checked {
    for (form, value) in [
        ("{value: \"\", env_var, from_env}", ""),
        (
            "legacy {value = env_var, from_env}",
            "env.BFC_CONFORMANCE_UNSET_OBJECT",
        ),
    ] {
        let reference = "env.BFC_CONFORMANCE_UNSET_OBJECT";
        let secret = json!({"value": value, "env_var": reference, "from_env": true});
        let (name, made) = created(t, json!([{"name": "o", "value": secret}])).await?;
        for answer in [&made, &t.get(&name).await?.body] {
            if !shows_reference(&answer["keys"][0]["value"], reference) {
                return Err(format!(
                    "a secret sent as {form} does not show {reference}: {}",
                    shown(&answer["keys"][0]["value"])
                ));
            }
        }
    }
    Ok(())
}

async fn env_var_without_prefix(t: &Target) -> Checked {
    let secret = json!({"value": "", "env_var": "BFC_CONFORMANCE_UNPREFIXED", "from_env": true});
    let (name, made) = created(t, json!([{"name": "p", "value": secret}])).await?;
    for answer in [&made, &t.get(&name).await?.body] {
        if !shows_reference(
            &answer["keys"][0]["value"],
            "env.BFC_CONFORMANCE_UNPREFIXED",
        ) {
            return Err(format!(
                "env_var BFC_CONFORMANCE_UNPREFIXED with from_env is not shown as env.BFC_CONFORMANCE_UNPREFIXED: {}",
                shown(&answer["keys"][0]["value"])
            ));
        }
    }
    Ok(())
}

async fn vault_reference(t: &Target) -> Checked {
    let reference = "vault.bfc-conformance/unset-secret";
    for (form, secret) in [
        ("a bare string", json!(reference)),
        (
            "{value, ref, type: vault}",
            json!({"value": "", "ref": reference, "type": "vault"}),
        ),
    ] {
        let (name, made) = created(t, json!([{"name": "v", "value": secret}])).await?;
        for answer in [&made, &t.get(&name).await?.body] {
            if !shows_reference(&answer["keys"][0]["value"], reference) {
                return Err(format!(
                    "a vault reference sent as {form} is not shown as {reference}: {}",
                    shown(&answer["keys"][0]["value"])
                ));
            }
        }
    }
    Ok(())
}

async fn unknown_form_refused(t: &Target) -> Checked {
    for form in [json!(42), json!(["sk-in-an-array-0123456789"])] {
        let name = t.fresh_name();
        let answer = t
            .put(
                &name,
                &custom(json!({"keys": [{"name": "u", "value": form}]})),
            )
            .await?;
        status(&answer, 400, &format!("a secret sent as {form}"))?;
        let error = &answer.body["error"];
        let names = |member: &str| {
            error[member]
                .as_str()
                .is_some_and(|m| m.contains("keys[0].value"))
        };
        if !names("param") && !names("message") {
            return Err(format!(
                "the refusal of a secret sent as {form} does not name keys[0].value: {}",
                shown(&answer.body)
            ));
        }
        status(&t.get(&name).await?, 404, "GET after the refused create")?;
    }
    Ok(())
}

async fn unresolved_reference_status(t: &Target) -> Checked {
    let (name, made) = created(
        t,
        json!([{"name": "env", "value": "env.BFC_CONFORMANCE_SURELY_UNSET"}]),
    )
    .await?;
    for answer in [&made, &t.get(&name).await?.body] {
        equal(&answer["status"], &json!("error"), "status")?;
        equal(
            &answer["provider_status"],
            &json!("error"),
            "provider_status",
        )?;
    }
    // The same provider with a literal is usable.
    let literal = t
        .put(
            &name,
            &custom(json!({"keys": [{"name": "env", "value": LONG}]})),
        )
        .await?;
    status(&literal, 200, "PUT with a literal secret")?;
    equal(
        &literal.body["status"],
        &json!("active"),
        "status with a literal",
    )
}

async fn mask_shapes(t: &Target) -> Checked {
    let name = t.fresh_name();
    let body = custom(json!({
        "keys": [{"name": "long", "value": LONG}, {"name": "short", "value": SHORT}],
        "proxy_config": {"type": "http", "url": "http://proxy.example:3128", "username": "u", "password": "proxy-secret-1"}
    }));
    let made = t.put(&name, &body).await?;
    status(&made, 200, "PUT with secrets")?;
    equal(
        &made.body["keys"][0]["value"]["value"],
        &json!(LONG_MASK),
        "a long secret's mask",
    )?;
    equal(
        &made.body["keys"][1]["value"]["value"],
        &json!("*".repeat(SHORT.len())),
        "a short secret's mask",
    )?;
    equal(
        &made.body["proxy_config"]["password"],
        &json!("<REDACTED>"),
        "the proxy password",
    )?;
    if made.body.to_string().contains(LONG) || made.body.to_string().contains("proxy-secret-1") {
        return Err("a secret is in the response".into());
    }
    Ok(())
}

async fn round_trip_keeps_secrets(t: &Target) -> Checked {
    let (name, made) = created(t, json!([{"id": "bfc-rt", "name": "rt", "value": LONG}])).await?;
    let mut body = t.get(&name).await?.body;
    body["keys"][0]["weight"] = json!(0.5);
    let again = t.put(&name, &body).await?;
    status(&again, 200, "PUT of the edited GET body")?;
    equal(&again.body["keys"][0]["weight"], &json!(0.5), "the edit")?;
    equal(
        &again.body["keys"][0]["value"],
        &made["keys"][0]["value"],
        "the secret's redacted form",
    )
}

async fn mismatched_mask_refused(t: &Target) -> Checked {
    let (name, _) = created(t, json!([{"id": "bfc-m", "name": "m", "value": LONG}])).await?;
    let before = t.get(&name).await?.body;
    let stale = custom(
        json!({"keys": [{"id": "bfc-m", "name": "m", "value": format!("sk-x{}zzzz", "*".repeat(24))}]}),
    );
    let answer = t.put(&name, &stale).await?;
    status(
        &answer,
        400,
        "PUT of a mask that is not the stored secret's",
    )?;
    for mask in ["[REDACTED]", "<REDACTED>"] {
        let other = custom(json!({"keys": [{"id": "bfc-m", "name": "m", "value": mask}]}));
        status(
            &t.put(&name, &other).await?,
            400,
            &format!("PUT of {mask} for a key whose mask is another"),
        )?;
    }
    let fresh = custom(json!({"keys": [{"name": "new", "value": "********"}]}));
    status(&t.put(&name, &fresh).await?, 400, "a mask for a new key")?;
    equal(
        &t.get(&name).await?.body,
        &before,
        "the provider after refused masks",
    )
}

async fn foreign_mask_refused(t: &Target) -> Checked {
    let other = "sk-another-secret-9876543210zyxw";
    let (name, _) = created(
        t,
        json!([{"id": "bfc-a", "name": "a", "value": LONG}, {"id": "bfc-b", "name": "b", "value": other}]),
    )
    .await?;
    let before = t.get(&name).await?.body;
    let mask_of_b = before["keys"][1]["value"]["value"].clone();
    if mask_of_b
        .as_str()
        .is_none_or(|m| m == LONG_MASK || !m.contains('*'))
    {
        return Err(format!(
            "key b's secret is not shown masked: {}",
            shown(&before)
        ));
    }
    let swapped = custom(json!({"keys": [
        {"id": "bfc-a", "name": "a", "value": mask_of_b},
        {"id": "bfc-b", "name": "b", "value": LONG_MASK}
    ]}));
    status(
        &t.put(&name, &swapped).await?,
        400,
        "PUT with each key's mask sent for the other key",
    )?;
    equal(
        &t.get(&name).await?.body,
        &before,
        "the provider after a refused mask",
    )
}

/// The refusal of a request without the right token: a 401 with the contract's error body.
fn unauthorized(answer: &Answer, what: &str) -> Checked {
    status(answer, 401, what)?;
    equal(
        &answer.body["status_code"],
        &json!(401),
        "status_code of a 401",
    )?;
    equal(
        &answer.body["is_bifrost_error"],
        &json!(false),
        "is_bifrost_error of a 401",
    )?;
    if answer.body["error"]["message"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Err(format!(
            "{what}: the 401 has no error.message: {}",
            shown(&answer.body)
        ));
    }
    Ok(())
}

async fn token_required(t: &Target) -> Judged {
    let anonymous = t.anonymous().ok_or_else(|| {
        Failure::Skip(
            "the runner was given no credentials (--token, --basic-auth), so it cannot tell what needs them"
                .into(),
        )
    })?;
    let name = t.fresh_name();
    let path = format!("/api/providers/{name}");
    let body = custom(json!({}));
    unauthorized(
        &t.call_as(anonymous, "PUT", &path, Some(&body), &[]).await?,
        "PUT without a token",
    )?;
    let wrong = [("Authorization", "Bearer bfc-not-the-admin-token-0123456789")];
    unauthorized(
        &t.call("PUT", &path, Some(&body), &wrong).await?,
        "PUT with a wrong token",
    )?;
    unauthorized(
        &t.call_as(anonymous, "GET", &path, None, &[]).await?,
        "GET without a token",
    )?;
    status(
        &t.get(&name).await?,
        404,
        "GET with the token after two refused PUTs",
    )?;
    Ok(())
}

/// The secret fields of each provider type's key block, as CONTRACT §4 lists them.
const KEY_SECRETS: &[(&str, &str, &[&str])] = &[
    (
        "azure",
        "azure_key_config",
        &["endpoint", "client_id", "client_secret", "tenant_id"],
    ),
    (
        "vertex",
        "vertex_key_config",
        &["project_id", "project_number", "region", "auth_credentials"],
    ),
    (
        "bedrock",
        "bedrock_key_config",
        &[
            "access_key",
            "secret_key",
            "session_token",
            "region",
            "arn",
            "role_arn",
            "external_id",
            "session_name",
        ],
    ),
];

/// A reference to a variable no server has, named after its field.
fn unset_reference(field: &str) -> String {
    format!(
        "env.BFC_CONFORMANCE_UNSET_{}",
        field.replace('.', "_").to_ascii_uppercase()
    )
}

/// Whether a response shows `reference` itself, unresolved: as the bare string, or in an object
/// form (`env_var` or `ref`) whose value is empty or the reference.
fn shows_reference(shown: &Value, reference: &str) -> bool {
    if shown.as_str() == Some(reference) {
        return true;
    }
    let named =
        shown["env_var"].as_str() == Some(reference) || shown["ref"].as_str() == Some(reference);
    let value = shown["value"].as_str().unwrap_or_default();
    named && (value.is_empty() || value == reference)
}

async fn key_references_unresolved(t: &Target) -> Judged {
    let mut refused = Vec::new();
    for (base, block, fields) in KEY_SECRETS {
        let name = t.fresh_name();
        let config: serde_json::Map<String, Value> = fields
            .iter()
            .map(|f| {
                (
                    f.to_string(),
                    json!(unset_reference(&format!("{block}.{f}"))),
                )
            })
            .collect();
        let value = unset_reference(&format!("{base}.value"));
        let body = json!({
            "custom_provider_config": {"base_provider_type": base},
            "keys": [{"name": "r", "value": value, *block: config}],
        });
        let made = t.put(&name, &body).await?;
        // Bifrost takes custom providers of a few base types only (not azure or vertex).
        if made.status == 400 && made.body.to_string().contains("base_provider_type") {
            refused.push(*base);
            continue;
        }
        status(
            &made,
            200,
            &format!("PUT of the {base}-based provider with references"),
        )?;
        let read = t.get(&name).await?;
        status(&read, 200, "GET")?;
        for answer in [&made.body, &read.body] {
            let key = &answer["keys"][0];
            if !shows_reference(&key["value"], &value) {
                return Err(format!(
                    "keys[0].value of a {base} key does not show {value}: {}",
                    shown(&key["value"])
                )
                .into());
            }
            for f in *fields {
                let reference = unset_reference(&format!("{block}.{f}"));
                if !shows_reference(&key[block][f], &reference) {
                    return Err(format!(
                        "keys[0].{block}.{f} does not show {reference}: {}",
                        shown(&key[block][f])
                    )
                    .into());
                }
            }
        }
    }
    if !refused.is_empty() {
        return Err(Failure::Skip(format!(
            "the target takes no {}-based custom provider, so references in those key fields were not judged (the others showed as references)",
            refused.join(" or ")
        )));
    }
    Ok(())
}

async fn proxy_references_unresolved(t: &Target) -> Checked {
    let name = t.fresh_name();
    let body = custom(json!({
        "network_config": {"ca_cert_pem": unset_reference("network_config.ca_cert_pem")},
        "proxy_config": {"type": "http", "url": "http://proxy.example:3128", "username": "u",
                         "password": unset_reference("proxy_config.password"),
                         "ca_cert_pem": unset_reference("proxy_config.ca_cert_pem")}
    }));
    let made = t.put(&name, &body).await?;
    status(
        &made,
        200,
        "PUT with references in proxy and network secrets",
    )?;
    let read = t.get(&name).await?;
    status(&read, 200, "GET")?;
    for answer in [&made.body, &read.body] {
        for (block, field) in [
            ("network_config", "ca_cert_pem"),
            ("proxy_config", "password"),
            ("proxy_config", "ca_cert_pem"),
        ] {
            let reference = unset_reference(&format!("{block}.{field}"));
            if !shows_reference(&answer[block][field], &reference) {
                return Err(format!(
                    "{block}.{field} does not show {reference}: {}",
                    shown(&answer[block][field])
                ));
            }
        }
    }
    Ok(())
}

/// A proxy CA certificate (its content does not matter to a store).
const PROXY_CA: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBbfcConformanceProxyCa0123456789\n-----END CERTIFICATE-----\n";

async fn proxy_secrets_kept(t: &Target) -> Judged {
    let name = t.fresh_name();
    let password = "proxy-password-0123456789";
    let body = custom(
        json!({"proxy_config": {"type": "http", "url": "http://proxy.example:3128",
        "username": "u", "password": password, "ca_cert_pem": PROXY_CA}}),
    );
    let made = t.put(&name, &body).await?;
    status(&made, 200, "PUT with proxy secrets")?;
    let history = format!("/api/providers/{name}/history");
    if t.call("GET", &history, None, &[]).await?.status != 200 {
        return Err(Failure::Skip(
            "the target has no history, so whether a sent-back <REDACTED> kept the stored secret cannot be seen".into(),
        ));
    }
    for field in ["password", "ca_cert_pem"] {
        equal(
            &made.body["proxy_config"][field],
            &json!("<REDACTED>"),
            &format!("proxy_config.{field}"),
        )?;
    }
    if made.body.to_string().contains(password) || made.body.to_string().contains("MIIBbfc") {
        return Err("a proxy secret is in the response".into());
    }
    let mut back = t.get(&name).await?.body;
    back["send_back_raw_request"] = json!(true);
    let again = t.put(&name, &back).await?;
    status(&again, 200, "PUT of the GET body with one edit")?;
    let revisions = t.call("GET", &history, None, &[]).await?.body;
    let changed = &revisions["revisions"][0]["changed"];
    if !changed
        .as_array()
        .is_some_and(|c| c.contains(&json!("send_back_raw_request")))
    {
        return Err(format!(
            "history does not name the edit send_back_raw_request: {}",
            shown(&revisions)
        )
        .into());
    }
    for field in ["proxy_config.password", "proxy_config.ca_cert_pem"] {
        if changed
            .as_array()
            .is_some_and(|c| c.contains(&json!(field)))
        {
            return Err(format!("<REDACTED> sent back changed the stored {field}").into());
        }
    }
    let fresh = t.fresh_name();
    let masked = custom(
        json!({"proxy_config": {"type": "http", "url": "http://proxy.example:3128",
        "username": "u", "password": "<REDACTED>"}}),
    );
    status(
        &t.put(&fresh, &masked).await?,
        400,
        "<REDACTED> as the proxy password of a new provider",
    )?;
    status(&t.get(&fresh).await?, 404, "GET after the refused create")?;
    Ok(())
}

/// The ETag of a successful write, or why it cannot be judged.
fn written_tag(answer: &Answer, what: &str) -> Result<String, Failure> {
    status(answer, 200, what)?;
    etag(answer).map_err(|_| Failure::Skip("the target sends no ETag".into()))
}

async fn every_write_changes_etag(t: &Target) -> Judged {
    let name = t.fresh_name();
    let key = |secret: &str| json!([{"id": "bfc-e", "name": "e", "value": secret}]);
    let first = written_tag(
        &t.put(&name, &custom(json!({"keys": key(LONG)}))).await?,
        "PUT creating the provider",
    )?;
    let read = t.get(&name).await?;
    status(&read, 200, "GET")?;
    if etag(&read)? != first {
        return Err("GET shows another ETag than the write answered".into());
    }
    let settings = written_tag(
        &t.put(
            &name,
            &custom(json!({"keys": key(LONG), "send_back_raw_request": true})),
        )
        .await?,
        "PUT changing a setting",
    )?;
    if settings == first {
        return Err("the ETag did not change when a setting changed".into());
    }
    let secret = written_tag(
        &t.put(
            &name,
            &custom(json!({"keys": key("sk-rotated-secret-abcdefghijkl"), "send_back_raw_request": true})),
        )
        .await?,
        "PUT changing only a key's secret",
    )?;
    if secret == settings {
        return Err("the ETag did not change when only a secret changed".into());
    }
    let refused = t
        .put(
            &name,
            &custom(json!({"concurrency_and_buffer_size": {"concurrency": 0, "buffer_size": 1}})),
        )
        .await?;
    status(&refused, 400, "PUT with concurrency 0")?;
    let after = t.get(&name).await?;
    if etag(&after)? != secret {
        return Err("a refused write changed the ETag".into());
    }
    Ok(())
}

async fn key_if_match(t: &Target) -> Judged {
    let (name, _) = created(t, json!([{"id": "bfc-k", "name": "k", "value": LONG}])).await?;
    let path = format!("/api/providers/{name}/keys/bfc-k");
    let read = t.call("GET", &path, None, &[]).await?;
    if matches!(read.status, 404 | 405) {
        return Err(Failure::Skip("the target has no /keys sub-resource".into()));
    }
    let first = written_tag(&read, "GET of a key")?;
    let edit = json!({"name": "k", "value": LONG_MASK, "weight": 0.5, "models": ["*"]});
    let second = written_tag(
        &t.call("PUT", &path, Some(&edit), &[]).await?,
        "PUT of a key",
    )?;
    if second == first {
        return Err("the ETag did not change on a key write".into());
    }
    let after = t.call("GET", &path, None, &[]).await?.body;
    let stale_edit = json!({"name": "k", "value": LONG_MASK, "weight": 2.0, "models": ["*"]});
    let stale = t
        .call("PUT", &path, Some(&stale_edit), &[("If-Match", &first)])
        .await?;
    status(&stale, 412, "key PUT with a stale If-Match")?;
    let stale = t
        .call("DELETE", &path, None, &[("If-Match", &first)])
        .await?;
    status(&stale, 412, "key DELETE with a stale If-Match")?;
    equal(
        &t.call("GET", &path, None, &[]).await?.body,
        &after,
        "the key after two 412s",
    )?;
    let current = t
        .call("DELETE", &path, None, &[("If-Match", &second)])
        .await?;
    status(&current, 200, "key DELETE with the current If-Match")?;
    Ok(())
}

async fn key_after_each_write(t: &Target) -> Judged {
    let (name, _) = created(t, json!([{"id": "bfc-a", "name": "a", "value": LONG}])).await?;
    keys_served(t, &name).await?;
    let keys = format!("/api/providers/{name}/keys");
    let path = format!("{keys}/bfc-b");
    // Each write's answered tag must be new, and be the one a GET of the key then shows.
    let mut seen: Vec<String> = Vec::new();
    let mut judge = async |answer: Answer, what: &str| -> Judged {
        let tag = written_tag(&answer, what)?;
        if seen.contains(&tag) {
            return Err(format!("{what} answered an ETag an earlier write had").into());
        }
        let read = t.call("GET", &path, None, &[]).await?;
        status(&read, 200, &format!("GET of the key after {what}"))?;
        if etag(&read)? != tag {
            return Err(format!("a GET of the key shows another ETag than {what} answered").into());
        }
        seen.push(tag);
        Ok(())
    };
    let created_key = json!({"id": "bfc-b", "name": "b", "value": SHORT, "models": ["*"]});
    judge(
        t.call("POST", &keys, Some(&created_key), &[]).await?,
        "POST /keys",
    )
    .await?;
    let edit =
        json!({"name": "b", "value": "*".repeat(SHORT.len()), "weight": 0.5, "models": ["*"]});
    judge(
        t.call("PUT", &path, Some(&edit), &[]).await?,
        "PUT /keys/{id}",
    )
    .await?;
    let mut provider = t.get(&name).await?.body;
    provider["keys"][1]["value"] = json!("sk-rotated-inline-0123456789");
    let inline = t.put(&name, &provider).await?;
    status(&inline, 200, "a provider PUT rotating the key's secret")?;
    let read = t.call("GET", &path, None, &[]).await?;
    let tag = written_tag(&read, "GET of the key after a provider PUT")?;
    if seen.contains(&tag) {
        return Err(
            "a provider PUT that rotated the key's secret left the key's ETag as it was".into(),
        );
    }
    seen.push(tag);
    let deleted = t.call("DELETE", &path, None, &[]).await?;
    status(&deleted, 200, "DELETE /keys/{id}")?;
    if etag(&deleted).is_err() {
        return Err("the answer of a key DELETE has no ETag".into());
    }
    Ok(())
}

async fn error_body(t: &Target) -> Checked {
    let (name, before) = created(t, json!([])).await?;
    let bad = custom(json!({"concurrency_and_buffer_size": {"concurrency": 0, "buffer_size": 10}}));
    let answer = t.put(&name, &bad).await?;
    status(&answer, 400, "PUT with concurrency 0")?;
    let b = &answer.body;
    equal(&b["is_bifrost_error"], &json!(false), "is_bifrost_error")?;
    equal(&b["status_code"], &json!(400), "status_code")?;
    if b["error"]["message"].as_str().is_none_or(str::is_empty) {
        return Err(format!("error.message is missing: {}", shown(b)));
    }
    if !b["extra_fields"].is_object() {
        return Err(format!("extra_fields is missing: {}", shown(b)));
    }
    let content_type = answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return Err(format!("content type {content_type:?}"));
    }
    equal(
        &t.get(&name).await?.body,
        &before,
        "the provider after a refused PUT",
    )
}

async fn error_code_and_param(t: &Target) -> Checked {
    let (name, _) = created(t, json!([])).await?;
    let bad = custom(json!({"keys": [{"weight": -1}]}));
    let answer = t.put(&name, &bad).await?;
    status(&answer, 400, "PUT with a negative weight")?;
    equal(
        &answer.body["error"]["param"],
        &json!("keys[0].weight"),
        "error.param",
    )?;
    if !answer.body["error"]["code"]
        .as_str()
        .is_some_and(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
    {
        return Err(format!(
            "error.code is not a snake_case code: {}",
            shown(&answer.body)
        ));
    }
    Ok(())
}

async fn unknown_field_refused(t: &Target) -> Checked {
    let (name, before) = created(t, json!([])).await?;
    let answer = t.put(&name, &custom(json!({"netwrok_config": {}}))).await?;
    status(&answer, 400, "PUT with a misspelt block")?;
    equal(
        &t.get(&name).await?.body,
        &before,
        "the provider after the refusal",
    )
}

async fn null_is_absent(t: &Target) -> Checked {
    let name = t.fresh_name();
    let body = custom(
        json!({"network_config": null, "proxy_config": null, "concurrency_and_buffer_size": null,
                             "keys": [{"name": "n", "value": LONG, "models": null, "blacklisted_models": null}]}),
    );
    let answer = t.put(&name, &body).await?;
    status(&answer, 200, "PUT with nulls")?;
    equal(
        &answer.body["concurrency_and_buffer_size"]["concurrency"],
        &json!(1000),
        "null concurrency block",
    )
}

async fn cross_field_rules(t: &Target) -> Checked {
    let (name, _) = created(t, json!([])).await?;
    let over =
        custom(json!({"concurrency_and_buffer_size": {"concurrency": 11, "buffer_size": 10}}));
    status(
        &t.put(&name, &over).await?,
        400,
        "concurrency above buffer_size",
    )?;
    let rebased = json!({"custom_provider_config": {"base_provider_type": "anthropic"}});
    status(
        &t.put(&name, &rebased).await?,
        400,
        "a changed base_provider_type",
    )
}

fn etag(answer: &Answer) -> Result<String, String> {
    answer
        .headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| "no ETag header".to_string())
}

/// A new provider written twice: the ETags of the two writes (checked to differ) and the
/// second answer, for the precondition checks.
async fn written_twice(t: &Target, name: &str) -> Result<(String, String, Answer), String> {
    let first = t.put(name, &custom(json!({}))).await?;
    status(&first, 200, "PUT")?;
    let old = etag(&first)?;
    let second = t
        .put(name, &custom(json!({"send_back_raw_request": true})))
        .await?;
    status(&second, 200, "second PUT")?;
    let current = etag(&second)?;
    if current == old {
        return Err("the ETag did not change on a write".into());
    }
    Ok((old, current, second))
}

async fn if_match(t: &Target) -> Checked {
    let name = t.fresh_name();
    let (old, current, second) = written_twice(t, &name).await?;
    let path = format!("/api/providers/{name}");
    let body = custom(json!({"send_back_raw_response": true}));
    let stale = t
        .call("PUT", &path, Some(&body), &[("If-Match", &old)])
        .await?;
    status(&stale, 412, "PUT with a stale If-Match")?;
    equal(
        &t.get(&name).await?.body,
        &second.body,
        "the provider after a 412",
    )?;
    let fresh = t
        .call("PUT", &path, Some(&body), &[("If-Match", &current)])
        .await?;
    status(&fresh, 200, "PUT with the current If-Match")
}

async fn if_match_delete(t: &Target) -> Checked {
    let name = t.fresh_name();
    let (old, current, second) = written_twice(t, &name).await?;
    let path = format!("/api/providers/{name}");
    let stale = t.call("DELETE", &path, None, &[("If-Match", &old)]).await?;
    status(&stale, 412, "DELETE with a stale If-Match")?;
    equal(
        &t.get(&name).await?.body,
        &second.body,
        "the provider after a 412",
    )?;
    let fresh = t
        .call("DELETE", &path, None, &[("If-Match", &current)])
        .await?;
    status(&fresh, 200, "DELETE with the current If-Match")?;
    status(&t.get(&name).await?, 404, "GET after the DELETE")
}

async fn on_every_response(t: &Target) -> Checked {
    let name = t.fresh_name();
    let path = format!("/api/providers/{name}");
    let tagged = |answer: &Answer, what: &str| -> Checked {
        status(answer, 200, what)?;
        etag(answer).map(|_| ()).map_err(|e| format!("{what}: {e}"))
    };
    let body = custom(json!({"provider": name}));
    tagged(
        &t.call("POST", "/api/providers", Some(&body), &[]).await?,
        "POST",
    )?;
    tagged(&t.get(&name).await?, "GET")?;
    tagged(&t.put(&name, &custom(json!({}))).await?, "PUT")?;
    let keys = format!("{path}/keys");
    let list = t.call("GET", &keys, None, &[]).await?;
    if list.status == 200 && list.body["keys"].is_array() {
        let key = json!({"id": "bfc-t", "name": "t", "value": LONG, "models": ["*"]});
        tagged(&t.call("POST", &keys, Some(&key), &[]).await?, "POST /keys")?;
        let one = format!("{keys}/bfc-t");
        tagged(&t.call("GET", &one, None, &[]).await?, "GET /keys/{id}")?;
        let edit = json!({"name": "t", "value": LONG_MASK, "weight": 2.0, "models": ["*"]});
        tagged(
            &t.call("PUT", &one, Some(&edit), &[]).await?,
            "PUT /keys/{id}",
        )?;
        tagged(
            &t.call("DELETE", &one, None, &[]).await?,
            "DELETE /keys/{id}",
        )?;
    }
    tagged(&t.call("DELETE", &path, None, &[]).await?, "DELETE")
}

async fn if_none_match_creates_only(t: &Target) -> Checked {
    let name = t.fresh_name();
    let path = format!("/api/providers/{name}");
    let body = custom(json!({}));
    let created = t
        .call("PUT", &path, Some(&body), &[("If-None-Match", "*")])
        .await?;
    status(&created, 200, "create-only PUT of a new name")?;
    let again = t
        .call("PUT", &path, Some(&body), &[("If-None-Match", "*")])
        .await?;
    status(&again, 412, "create-only PUT of an existing name")
}

async fn history_and_rollback(t: &Target) -> Checked {
    let (name, first) = created(t, json!([{"id": "bfc-h", "name": "h", "value": LONG}])).await?;
    let edit = custom(
        json!({"keys": [{"id": "bfc-h", "name": "h", "value": "sk-second-secret-0123456789"}],
                             "network_config": {"max_retries": 2}}),
    );
    status(&t.put(&name, &edit).await?, 200, "second PUT")?;
    let history = t
        .call("GET", &format!("/api/providers/{name}/history"), None, &[])
        .await?;
    status(&history, 200, "GET history")?;
    let revisions = history.body["revisions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    equal(
        &json!(revisions.len()),
        &json!(2),
        "revisions of the provider",
    )?;
    equal(
        &revisions[0]["action"],
        &json!("update"),
        "newest revision's action",
    )?;
    equal(
        &revisions[1]["action"],
        &json!("create"),
        "oldest revision's action",
    )?;
    let changed = revisions[0]["changed"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !changed.contains(&json!("network_config.max_retries")) {
        return Err(format!(
            "changed does not name network_config.max_retries: {}",
            shown(&revisions[0])
        ));
    }
    let older = revisions[1]["revision"]
        .as_i64()
        .ok_or("a revision without its number")?;
    if revisions[0]["revision"]
        .as_i64()
        .is_none_or(|newer| newer <= older)
    {
        return Err("revision numbers do not grow".into());
    }
    let back = t
        .call(
            "POST",
            &format!("/api/providers/{name}/rollback"),
            Some(&json!({"revision": older})),
            &[],
        )
        .await?;
    status(&back, 200, "rollback")?;
    equal(
        &back.body["keys"][0]["value"],
        &first["keys"][0]["value"],
        "the secret after the rollback",
    )?;
    equal(
        &back.body["network_config"]["max_retries"],
        &json!(0),
        "the setting after the rollback",
    )
}

async fn get_missing(t: &Target) -> Checked {
    let name = t.fresh_name();
    status(&t.get(&name).await?, 404, "GET of a missing provider")
}

async fn delete_missing(t: &Target) -> Checked {
    let name = t.fresh_name();
    let answer = t
        .call("DELETE", &format!("/api/providers/{name}"), None, &[])
        .await?;
    status(&answer, 404, "DELETE of a missing provider")
}

async fn key_missing(t: &Target) -> Judged {
    let (name, _) = created(t, json!([])).await?;
    keys_served(t, &name).await?;
    let answer = t
        .call(
            "GET",
            &format!("/api/providers/{name}/keys/bfc-no-such-key"),
            None,
            &[],
        )
        .await?;
    Ok(status(&answer, 404, "GET of a missing key")?)
}
