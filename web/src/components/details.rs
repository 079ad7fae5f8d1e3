//! The detail rows of a step's diff (added, removed, changed cells) in a paged table with a
//! column filter and a key search. Pages come from the API online, or are cut from the
//! bundle's Arrow batches offline with the same query semantics.

use std::rc::Rc;

use arrow_array::RecordBatch;
use pipeproof_core::api::{DetailKind, DetailPage, DetailQuery};
use pipeproof_core::bundle::Details;
use pipeproof_core::diff::{ROW_NUMBER, format_column};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{ApiError, ApiResult, Client};
use crate::app::Route;
use crate::components::status::{ErrorBox, Loading};
use crate::fetch::{FetchState, use_fetch};
use crate::view::{count, value};

const PAGE: u64 = 50;

/// Where the detail rows come from.
#[derive(Clone, Debug)]
pub enum DetailSource {
    /// The server's details route.
    Api {
        /// The client.
        client: Client,
        /// The run.
        run: String,
        /// The step.
        index: u64,
    },
    /// A bundle loaded in the browser.
    Bundle(Rc<Details>),
}

impl PartialEq for DetailSource {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                DetailSource::Api { client, run, index },
                DetailSource::Api {
                    client: c2,
                    run: r2,
                    index: i2,
                },
            ) => client == c2 && run == r2 && index == i2,
            (DetailSource::Bundle(a), DetailSource::Bundle(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// A page of details cut from a bundle's batches: filter by `column` (changed cells) and by
/// key (as the server does: core's [`pipeproof_core::lookup::rows_with_key`]), then take
/// `offset..offset + limit`.
pub fn local_page(details: &Details, q: &DetailQuery, key: &[String]) -> ApiResult<DetailPage> {
    let batch: &RecordBatch = match q.kind {
        DetailKind::Added => &details.added,
        DetailKind::Removed => &details.removed,
        DetailKind::Changed => &details.changed,
    };
    let fail = |e: pipeproof_core::Error| {
        ApiError::new(0, format!("the bundle's detail rows cannot be shown: {e}"))
    };
    let schema = batch.schema();
    let text_of = |name: &str| -> ApiResult<Option<Vec<Option<String>>>> {
        match schema.index_of(name) {
            Ok(i) => Ok(Some(format_column(batch.column(i)).map_err(fail)?)),
            Err(_) => Ok(None),
        }
    };
    let mut keep: Vec<usize> = (0..batch.num_rows()).collect();
    if let (Some(col), DetailKind::Changed) = (&q.column, q.kind)
        && let Some(names) = text_of("column")?
    {
        keep.retain(|&r| names[r].as_deref() == Some(col.as_str()));
    }
    if let Some(k) = &q.key {
        match key.is_empty() {
            true => keep.clear(),
            false => {
                let found = pipeproof_core::lookup::rows_with_key(batch, key, k).map_err(fail)?;
                keep.retain(|r| found.binary_search(r).is_ok());
            }
        }
    }
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(PAGE);
    let page: Vec<usize> = keep
        .iter()
        .copied()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows: Vec<Map<String, Value>> = vec![Map::new(); page.len()];
    for (ci, name) in columns.iter().enumerate() {
        let rows_batch: Vec<RecordBatch> = page.iter().map(|&r| batch.slice(r, 1)).collect();
        for (out, b) in rows.iter_mut().zip(&rows_batch) {
            let v = format_column(b.column(ci)).map_err(fail)?;
            out.insert(
                name.clone(),
                v.into_iter()
                    .next()
                    .flatten()
                    .map_or(Value::Null, Value::String),
            );
        }
    }
    Ok(DetailPage {
        kind: q.kind,
        columns,
        rows,
        total: keep.len() as u64,
        offset,
        limit,
        truncated: false,
    })
}

/// Props of [`DetailsTable`].
#[derive(Properties, PartialEq)]
pub struct DetailsProps {
    /// Where the rows come from.
    pub source: DetailSource,
    /// The key columns (the search matches every one).
    pub key_columns: Vec<String>,
    /// The compared columns, for the column filter.
    pub columns: Vec<String>,
    /// Columns whose type family changed at this step, with their types (`float64 →
    /// large_utf8`): every value of theirs differs, even where old and new read alike.
    #[prop_or_default]
    pub retyped: Vec<(String, String)>,
}

/// What the table shows, in the address's query (`#/runs/ID/steps/1?rows=added&page=2`,
/// `?column=amount&key=17`), so that Back, a reload or a shared link show the same rows. Only
/// what differs from the start (the first tab, page 1, every column, no search) is written; a
/// value that does not parse is ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetailsInUrl {
    /// Which rows: `changed`, `added` or `removed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<String>,
    /// The page, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Only changes in this column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The key searched for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The table's state: which rows, the column filter, the key searched for, the first row.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    kind: DetailKind,
    column: Option<String>,
    key: Option<String>,
    offset: u64,
}

impl Shown {
    /// The state an address asks for, on a step with (or without) key columns.
    fn of(url: &DetailsInUrl, keyless: bool) -> Shown {
        let first = if keyless {
            DetailKind::Added
        } else {
            DetailKind::Changed
        };
        let kind = match url.rows.as_deref() {
            Some("changed") if !keyless => DetailKind::Changed,
            Some("added") => DetailKind::Added,
            Some("removed") => DetailKind::Removed,
            _ => first,
        };
        let page = url
            .page
            .as_deref()
            .and_then(|p| p.parse::<u64>().ok())
            .filter(|&p| p >= 1)
            .unwrap_or(1);
        let nonempty = |v: &Option<String>| {
            v.as_ref()
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        Shown {
            kind,
            column: nonempty(&url.column).filter(|_| kind == DetailKind::Changed),
            key: nonempty(&url.key).filter(|_| !keyless),
            offset: (page - 1).saturating_mul(PAGE),
        }
    }

    /// The address's query for this state.
    fn url(&self, keyless: bool) -> DetailsInUrl {
        let first = if keyless {
            DetailKind::Added
        } else {
            DetailKind::Changed
        };
        let page = self.offset / PAGE + 1;
        DetailsInUrl {
            rows: (self.kind != first).then(|| self.kind.as_str().to_string()),
            page: (page > 1).then(|| page.to_string()),
            column: self
                .column
                .clone()
                .filter(|_| self.kind == DetailKind::Changed),
            key: self.key.clone(),
        }
    }
}

/// The paged details table.
#[component]
pub fn DetailsTable(props: &DetailsProps) -> Html {
    // Without a key the diff is a multiset diff of whole rows: rows are added or removed,
    // never changed, so there are no changed cells to show.
    let keyless = props.key_columns.is_empty();
    let url = use_location()
        .and_then(|l| l.query::<DetailsInUrl>().ok())
        .unwrap_or_default();
    let shown = Shown::of(&url, keyless);
    let route = use_route::<Route>();
    let navigator = use_navigator();
    // Every change goes into the address (a new history entry, so Back returns to it).
    let show = {
        let (route, navigator) = (route.clone(), navigator.clone());
        Callback::from(move |to: Shown| {
            if let (Some(route), Some(n)) = (&route, &navigator) {
                let _ = n.push_with_query(route, &to.url(keyless));
            }
        })
    };
    let search_ref = use_node_ref();
    let column_ref = use_node_ref();
    // The form shows the column and key in force, also after Back or Forward changed them.
    {
        let (search_ref, column_ref) = (search_ref.clone(), column_ref.clone());
        use_effect_with(
            (shown.key.clone(), shown.column.clone(), shown.kind),
            move |(key, column, _)| {
                if let Some(i) = search_ref.cast::<HtmlInputElement>() {
                    i.set_value(key.as_deref().unwrap_or(""));
                }
                if let Some(s) = column_ref.cast::<HtmlSelectElement>() {
                    s.set_value(column.as_deref().unwrap_or("*"));
                }
            },
        );
    }
    let kind = shown.kind;
    let column = shown.column.clone();
    let search = shown.key.clone();

    let query = DetailQuery {
        kind,
        column: column.clone(),
        key: search.clone(),
        offset: Some(shown.offset),
        limit: Some(PAGE),
    };
    let key = props.key_columns.clone();
    let page = use_fetch(
        (props.source.clone(), query.clone()),
        move |(source, q): (DetailSource, DetailQuery)| {
            let key = key.clone();
            async move {
                match source {
                    DetailSource::Api { client, run, index } => {
                        client.details(&run, index, &q).await
                    }
                    DetailSource::Bundle(d) => local_page(&d, &q, &key),
                }
            }
        },
    );
    // A tab keeps the search (a key is a key on every tab), and starts at its first page.
    let to_kind = {
        let (shown, show) = (shown.clone(), show.clone());
        move |k: DetailKind| {
            show.emit(Shown {
                kind: k,
                column: shown.column.clone().filter(|_| k == DetailKind::Changed),
                offset: 0,
                ..shown.clone()
            })
        }
    };

    let tab = |k: DetailKind, label: &'static str| {
        let to_kind = to_kind.clone();
        let selected = kind == k;
        html! {
            <button type="button" role="tab" id={format!("tab-{}", k.as_str())} aria-selected={selected.to_string()}
                aria-controls="details-panel" tabindex={if selected { "0" } else { "-1" }} class={classes!("tab", selected.then_some("on"))}
                onclick={Callback::from(move |_| to_kind(k))}>{label}</button>
        }
    };
    // The tabs as a tab list: the arrow keys (and Home, End) move between them, Tab leaves.
    let on_tab_key = {
        let to_kind = to_kind.clone();
        let kinds: Vec<DetailKind> = [DetailKind::Changed, DetailKind::Added, DetailKind::Removed]
            .into_iter()
            .filter(|k| !(keyless && *k == DetailKind::Changed))
            .collect();
        Callback::from(move |e: KeyboardEvent| {
            let at = kinds.iter().position(|k| *k == kind).unwrap_or(0);
            let to = match e.key().as_str() {
                "ArrowRight" => (at + 1) % kinds.len(),
                "ArrowLeft" => (at + kinds.len() - 1) % kinds.len(),
                "Home" => 0,
                "End" => kinds.len() - 1,
                _ => return,
            };
            e.prevent_default();
            to_kind(kinds[to]);
            if let Some(b) = gloo::utils::document()
                .get_element_by_id(&format!("tab-{}", kinds[to].as_str()))
                .and_then(|b| b.dyn_into::<web_sys::HtmlElement>().ok())
            {
                let _ = b.focus();
            }
        })
    };
    let on_column = {
        let (shown, show) = (shown.clone(), show.clone());
        Callback::from(move |e: Event| {
            let v = e.target_unchecked_into::<HtmlSelectElement>().value();
            show.emit(Shown {
                column: (!v.is_empty() && v != "*").then_some(v),
                offset: 0,
                ..shown.clone()
            });
        })
    };
    let on_search = {
        let (shown, show, r) = (shown.clone(), show.clone(), search_ref.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let v = r
                .cast::<HtmlInputElement>()
                .map(|i| i.value().trim().to_string())
                .unwrap_or_default();
            show.emit(Shown {
                key: (!v.is_empty()).then_some(v),
                offset: 0,
                ..shown.clone()
            });
        })
    };
    let clear_search = {
        let (shown, show, r) = (shown.clone(), show.clone(), search_ref.clone());
        Callback::from(move |_: MouseEvent| {
            if let Some(i) = r.cast::<HtmlInputElement>() {
                i.set_value("");
            }
            show.emit(Shown {
                key: None,
                offset: 0,
                ..shown.clone()
            });
        })
    };

    let body = match &*page {
        FetchState::Loading => html! { <Loading what="Loading detail rows…" /> },
        FetchState::Failed(e) => {
            html! { <ErrorBox error={e.clone()} doing="Could not load the detail rows" retry={page.retry()} retrying={page.retrying()} /> }
        }
        FetchState::Ready(p) => {
            let go = |to: u64| {
                let (shown, show) = (shown.clone(), show.clone());
                Callback::from(move |_: MouseEvent| {
                    show.emit(Shown {
                        offset: to,
                        ..shown.clone()
                    })
                })
            };
            let first = p.offset + 1;
            let last = p.offset + p.rows.len() as u64;
            let changed = p.kind == DetailKind::Changed;
            // The diff's own column beside added and removed rows: where the row is (or was).
            let row_note = p.columns.iter().any(|c| c == ROW_NUMBER).then_some(match p.kind {
                DetailKind::Removed => "_row: where the row was in the previous step's data, counting from 0 (the first row is 0).",
                _ => "_row: where the row is in this step's data, counting from 0 (the first row is 0).",
            });
            html! { <>
                <p class="pager" aria-live="polite">
                    <button type="button" disabled={p.offset == 0} onclick={go(p.offset.saturating_sub(PAGE))}>{"← Previous"}</button>
                    if p.rows.is_empty() && p.total > 0 {
                        <span class="range">{format!("This page is past the last of the {} rows (an old or edited address). ", count(p.total))}
                            <button type="button" class="link" onclick={go(0)}>{"Go to the first page"}</button></span>
                    } else {
                        <span class="range">{ if p.total == 0 { "No rows".to_string() } else { format!("Rows {}–{} of {}", count(first), count(last), count(p.total)) } }</span>
                    }
                    <button type="button" disabled={last >= p.total} onclick={go(p.offset + PAGE)}>{"Next →"}</button>
                    if p.truncated { <span class="muted">{" (the stored details were cut or skipped; counts above are complete)"}</span> }
                </p>
                <div class="scroll">
                <table class="details">
                    <thead><tr>
                        { for p.columns.iter().filter(|c| !(changed && (*c == "old" || *c == "new"))).map(|c| match (c.as_str(), &row_note) {
                            (ROW_NUMBER, Some(note)) => html!{ <th scope="col" title={*note} aria-describedby="row-note"><span class="explained">{c.clone()}</span></th> },
                            _ => html!{ <th scope="col">{c.clone()}</th> },
                        }) }
                        if changed { <th scope="col">{"old → new"}</th> }
                    </tr></thead>
                    <tbody>
                    { for p.rows.iter().map(|r| html! {
                        <tr class={p.kind.as_str()}>
                            { for p.columns.iter().filter(|c| !(changed && (*c == "old" || *c == "new"))).map(|c| html!{ <td>{value(r.get(c))}</td> }) }
                            if changed {
                                <td class="change"><del>{value(r.get("old"))}</del>{" → "}<ins>{value(r.get("new"))}</ins>
                                    { for props.retyped.iter().filter(|(c, _)| r.get("column").and_then(|v| v.as_str()) == Some(c.as_str()))
                                        .map(|(_, t)| html! { <span class="muted">{format!(" (retyped {t})")}</span> }) }
                                </td>
                            }
                        </tr>
                    }) }
                    </tbody>
                </table>
                </div>
                if let Some(note) = row_note {
                    <p class="muted note" id="row-note">{note}</p>
                }
            </> }
        }
    };
    html! {
        <section aria-labelledby="details-h" class="details-box">
            <h2 id="details-h">{"Detail rows"}</h2>
            <div role="tablist" aria-label="Which rows" onkeydown={on_tab_key}>
                if !keyless { { tab(DetailKind::Changed, "Changed cells") } }
                { tab(DetailKind::Added, "Added rows") }
                { tab(DetailKind::Removed, "Removed rows") }
            </div>
            <div class="filters">
                if kind == DetailKind::Changed {
                    <label>{"Column "}
                        <select ref={column_ref} onchange={on_column} aria-label="Only changes in column">
                            <option value="*" selected={column.is_none()}>{"all columns"}</option>
                            { for props.columns.iter().map(|c| html!{ <option value={c.clone()} selected={column.as_deref() == Some(c.as_str())}>{c.clone()}</option> }) }
                        </select>
                    </label>
                }
                if !props.key_columns.is_empty() {
                    <form class="inline" onsubmit={on_search}>
                        <label for="key-search" title={(props.key_columns.len() > 1).then_some("The key's values in the order of its columns, joined with |")}>{format!("Key ({}) ", props.key_columns.join(" | "))}</label>
                        <input id="key-search" type="search" ref={search_ref} />
                        <button type="submit">{"Search"}</button>
                        if search.is_some() { <button type="button" onclick={clear_search}>{"Clear"}</button> }
                    </form>
                }
            </div>
            <div role="tabpanel" id="details-panel" aria-labelledby={format!("tab-{}", kind.as_str())}>
                { body }
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn details() -> Details {
        let changed = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("column", DataType::Utf8, false),
                Field::new("old", DataType::Utf8, true),
                Field::new("new", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(Int64Array::from(vec![1, 1, 2, 3])),
                Arc::new(StringArray::from(vec!["a", "b", "a", "a"])),
                Arc::new(StringArray::from(vec![
                    Some("x"),
                    Some("y"),
                    None,
                    Some("p"),
                ])),
                Arc::new(StringArray::from(vec![
                    Some("X"),
                    Some("Y"),
                    Some("z"),
                    Some("q"),
                ])),
            ],
        )
        .unwrap();
        let empty = RecordBatch::new_empty(Arc::new(Schema::new(vec![Field::new(
            "id",
            DataType::Int64,
            false,
        )])));
        Details {
            added: empty.clone(),
            removed: empty,
            changed,
        }
    }

    fn query(column: Option<&str>, key: Option<&str>, offset: u64, limit: u64) -> DetailQuery {
        DetailQuery {
            kind: DetailKind::Changed,
            column: column.map(String::from),
            key: key.map(String::from),
            offset: Some(offset),
            limit: Some(limit),
        }
    }

    #[test]
    fn the_address_gives_the_tables_state_and_back() {
        let url = |rows: Option<&str>,
                   page: Option<&str>,
                   column: Option<&str>,
                   key: Option<&str>| DetailsInUrl {
            rows: rows.map(String::from),
            page: page.map(String::from),
            column: column.map(String::from),
            key: key.map(String::from),
        };
        let start = Shown::of(&DetailsInUrl::default(), false);
        assert_eq!(
            (
                start.kind,
                start.offset,
                start.column.clone(),
                start.key.clone()
            ),
            (DetailKind::Changed, 0, None, None)
        );
        assert_eq!(
            start.url(false),
            DetailsInUrl::default(),
            "the start writes nothing"
        );

        let s = Shown::of(&url(None, Some("3"), Some("amount"), Some(" 17 ")), false);
        assert_eq!((s.kind, s.offset), (DetailKind::Changed, 2 * PAGE));
        assert_eq!(
            (s.column.as_deref(), s.key.as_deref()),
            (Some("amount"), Some("17"))
        );
        assert_eq!(
            s.url(false),
            url(None, Some("3"), Some("amount"), Some("17"))
        );

        // A column filter is for changed cells only; values that do not parse are ignored.
        let s = Shown::of(
            &url(Some("removed"), Some("x"), Some("amount"), None),
            false,
        );
        assert_eq!((s.kind, s.offset, s.column), (DetailKind::Removed, 0, None));
        assert_eq!(
            Shown::of(&url(None, Some("0"), None, None), false).offset,
            0
        );
        assert_eq!(
            Shown::of(&url(Some("nonsense"), None, None, None), false).kind,
            DetailKind::Changed
        );

        // Without a key: no changed cells, no key search; added rows come first.
        let s = Shown::of(&url(Some("changed"), None, None, Some("7")), true);
        assert_eq!((s.kind, s.key), (DetailKind::Added, None));
        let s = Shown::of(&url(Some("removed"), None, None, None), true);
        assert_eq!(s.url(true).rows.as_deref(), Some("removed"));
        assert_eq!(
            Shown::of(&url(Some("added"), None, None, None), true)
                .url(true)
                .rows,
            None
        );
    }

    #[test]
    fn bundle_pages_filter_like_the_api() {
        let d = details();
        let key = vec!["id".to_string()];
        let all = local_page(&d, &query(None, None, 0, 10), &key).unwrap();
        assert_eq!(all.total, 4);
        assert_eq!(all.columns, ["id", "column", "old", "new"]);
        assert_eq!(all.rows[2]["old"], Value::Null);
        assert_eq!(all.rows[2]["new"], Value::String("z".into()));

        let col_a = local_page(&d, &query(Some("a"), None, 0, 10), &key).unwrap();
        assert_eq!(col_a.total, 3);

        let by_key = local_page(&d, &query(None, Some("1"), 0, 10), &key).unwrap();
        assert_eq!(by_key.total, 2);
        assert_eq!(by_key.rows[1]["column"], Value::String("b".into()));
        // As a value of the key's type, as the server compares it.
        let padded = local_page(&d, &query(None, Some("001"), 0, 10), &key).unwrap();
        assert_eq!(padded.total, 2);
        let not_a_number = local_page(&d, &query(None, Some("one"), 0, 10), &key).unwrap();
        assert_eq!(not_a_number.total, 0);

        let both = local_page(&d, &query(Some("a"), Some("3"), 0, 10), &key).unwrap();
        assert_eq!(both.total, 1);
        assert_eq!(both.rows[0]["new"], Value::String("q".into()));

        let second_page = local_page(&d, &query(None, None, 2, 2), &key).unwrap();
        assert_eq!((second_page.total, second_page.rows.len()), (4, 2));
        assert_eq!(second_page.rows[0]["id"], Value::String("2".into()));

        let no_key = local_page(&d, &query(None, Some("1"), 0, 10), &[]).unwrap();
        assert_eq!(
            no_key.total, 0,
            "a key search without key columns finds nothing"
        );
    }
}
