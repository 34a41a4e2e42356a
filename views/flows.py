"""Flows: saved versions with their evidence, YAML, diffs, labels, exports and import."""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAPIException

from playground.errors import PlaygroundError
from playground.flows.capture import draft_from_spec
from playground.flows.diff import diff_specs
from playground.flows.exporters import FORMATS, export_zip
from playground.flows.registry import FlowRegistry
from playground.flows.spec import FlowSpec
from playground.formatting import version_name
from ui.answer_markdown import inline_markdown
from ui.flow_widgets import label_moves_table, registry, versions_table

FORMAT_HELP = {
    "promptflow": "PromptFlow DAG flow directory (`pf flow test --flow DIR`)",
    "prompty": "a .prompty file (promptflow's `Prompty.load`)",
    "python": "a standalone script using the openai SDK",
}


def _import_box(flows: FlowRegistry) -> None:
    with st.expander("Import a flow spec", icon=":material/upload:"):
        upload = st.file_uploader("YAML file", type=["yaml", "yml"], key="flows_upload")
        pasted = st.text_area("…or paste YAML", key="flows_paste", height=150)
        name = st.text_input("Save under the name (optional)", key="flows_import_name")
        if st.button("Import", key="flows_import", icon=":material/upload:"):
            raw: str | bytes | None = upload.getvalue() if upload is not None else pasted
            if not raw:
                st.error("Choose a YAML file or paste one first.")
                return
            try:
                saved = flows.import_text(
                    raw, name.strip() or None, upload.name if upload else None
                )
            except PlaygroundError as exc:
                st.error(str(exc), icon=":material/error:")
            else:
                st.session_state["flows_name"] = saved.name
                st.success(f"Saved {saved.name} v{saved.version}", icon=":material/check:")


def _load_into_playground(spec: FlowSpec, flows: FlowRegistry) -> None:
    st.session_state["pending_draft"] = draft_from_spec(spec, flows.settings)
    try:
        st.switch_page("views/playground_page.py")
    except StreamlitAPIException:  # page not routed (e.g. this page opened alone)
        st.info("Loaded into the editor; open the Playground page to continue.")


st.title("Flows")
st.caption(
    "Saved winners as versioned specs: run them with `playground flow run NAME@LABEL`, "
    "diff them, and export them to PromptFlow, Prompty or plain Python."
)
flows = registry()
_import_box(flows)

summaries = flows.list()
if not summaries:
    st.info(
        "No flows yet. Use **Save as flow** under any answer in the Playground, or import a "
        "YAML spec above."
    )
    st.stop()

names = [s.name for s in summaries]
if st.session_state.get("flows_name") not in names:
    st.session_state["flows_name"] = names[0]
name = st.selectbox("Flow", names, key="flows_name")
st.dataframe(
    versions_table(flows.overview(name)),
    hide_index=True,
    key="flows_table",
    column_config={"labels": st.column_config.TextColumn(width="medium")},
)

summary = next(s for s in summaries if s.name == name)
labels_of: dict[int, list[str]] = {}
for label, at in summary.labels.items():
    labels_of.setdefault(at, []).append(label)
versions = [v.version for v in reversed(summary.versions)]
# The options' text must not change when a label moves: the browser sends back the text it
# shows, and a text that no longer matches any option reset the picker to the newest version.
version = st.selectbox("Version", versions, key=f"flows_version_{name}", format_func=version_name)
if version in labels_of:
    st.caption("Labelled " + ", ".join(f"`{label}`" for label in sorted(labels_of[version])))
try:
    spec = flows.get(name, version)
    yaml_text = flows.yaml_text(name, version)
except PlaygroundError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

# Keyed and tracked, so that a rerun (pointing a label, picking a format) keeps the open tab.
yaml_tab, diff_tab, labels_tab, export_tab = st.tabs(
    ["YAML", "Diff", "Labels", "Export"], key="flows_tab", on_change="rerun"
)

with yaml_tab:
    left, right = st.columns(2)
    left.download_button(
        "Download YAML",
        yaml_text,
        file_name=f"{name}.v{version}.yaml",
        mime="application/yaml",
        key="flows_download_yaml",
        icon=":material/download:",
    )
    if right.button("Load into Playground", key="flows_load", icon=":material/science:"):
        _load_into_playground(spec, flows)
    st.code(yaml_text, language="yaml")

with diff_tab:
    others = [v for v in versions if v != version]
    if not others:
        st.info("This flow has one version; save another to compare.")
    else:
        default = spec.parent if spec.parent in others else others[0]
        other = st.selectbox(
            "Compare with",
            others,
            index=others.index(default),
            key=f"flows_diff_{name}_{version}",
            format_func=version_name,
        )
        older, newer = sorted([other, version])
        change = diff_specs(flows.get(name, older), flows.get(name, newer))
        # the summary quotes keys and values of specs from elsewhere: nothing in it is fetched
        summary_text = inline_markdown(change.summary)
        st.markdown(f"**{version_name(older)} → {version_name(newer)}:** {summary_text}")
        st.code(change.unified or "(identical)", language="diff")

with labels_tab:
    if summary.labels:
        st.write(", ".join(f"`{k}` → v{v}" for k, v in summary.labels.items()))
    label_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
    new_label = label_col.text_input("Label", value="production", key="flows_label")
    if button_col.button(f"Point at v{version}", key="flows_set_label"):
        try:
            flows.set_label(name, new_label.strip(), version)
        except PlaygroundError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            st.rerun()
    moves = flows.label_history(name)
    if moves:
        st.caption("Every move of a label")
        st.dataframe(label_moves_table(moves), hide_index=True, key="flows_label_history")

with export_tab:
    fmt = st.radio(
        "Format",
        FORMATS,
        key="flows_export_format",
        horizontal=True,
        format_func=lambda f: f,
        captions=[FORMAT_HELP[f] for f in FORMATS],
    )
    try:
        archive = export_zip(spec, fmt, flows.settings)
    except PlaygroundError as exc:
        st.error(str(exc), icon=":material/error:")
    else:
        st.download_button(
            f"Download {fmt} export (.zip)",
            archive,
            file_name=f"{name}-v{version}-{fmt}.zip",
            mime="application/zip",
            key="flows_download_export",
            icon=":material/download:",
        )
