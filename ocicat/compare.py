"""Two versions of a chart compared, and the upgrade report: what changed, in the order it may break an upgrade.

A comparison is made of two *snapshots* (ocicat.catalog.reads.chart_snapshot): Chart.yaml's fields, values.yaml's
text, the values schema, dependencies, the ``artifacthub.io/images`` annotation, and the digests of the templates
and CRDs. Their texts are asked for (``load``) only where the digests differ, so the files two versions share, most
of them, are never read.

Every input was written by whoever pushed the chart, so every part is bounded whatever it holds: values files are
parsed under untrusted.yaml_document's limits and diffed lazily up to MAX_CHANGES; schemas are walked up to
MAX_SCHEMA_NODES; text diffs stop at MAX_DIFF_CELLS per file, MAX_DIFF_BYTES in all and a time budget. What is
cut is said in ``notes``, and nothing here raises on bad input: a part that cannot be compared says why.

Paths are written as Helm's ``--set`` takes them (``image.tag``, ``podAnnotations.prometheus\\.io/scrape``,
``args[0]``), so a path in a report can be pasted into a command.
"""

from __future__ import annotations

import difflib
import json
import operator
import re
import time
from collections import Counter
from itertools import islice

import dictdiffer
import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from .untrusted import YAMLError, storable, yaml_document, yaml_document_and_key_lines

MAX_CHANGES = 1000  # values keys added, removed or changed, listed per comparison
MAX_SCHEMA_NODES = 20_000  # properties and items visited per schema, $refs followed
MAX_SCHEMA_DEPTH = 32
MAX_PAIRWISE = 250_000  # see _checkable
MAX_ENUM = 1000  # values of one enum compared
MAX_ENUM_SHOWN = 20  # removed enum values listed
MAX_DESCRIPTION = 500
MAX_DIFF_CELLS = 4_000_000  # of the changed middles of two files, the product of their lengths in lines; see _unified
DIFF_CONTEXT = 3
MAX_DIFF_BYTES = 2 * 1024 * 1024  # unified diffs in all
TEXT_DIFF_SECONDS = 1.0  # difflib's worst case grows with the product of two files' lengths
MAX_CRD_FIELDS = 20  # changed fields named per CRD
MAX_REPORT_ITEMS = 100
MAX_SHOWN = 120  # characters of a value quoted in a report item
MAX_COMMENT = 1000
MAX_COMMENT_LINES = 50

# Chart.yaml fields shown side by side (helm_charts columns, under Chart.yaml's names).
FIELDS = {"apiVersion": "api_version", "name": "name", "version": "version", "appVersion": "app_version",
          "kubeVersion": "kube_version", "description": "description", "type": "type", "home": "home",
          "icon": "icon", "deprecated": "deprecated", "keywords": "keywords", "sources": "sources",
          "maintainers": "maintainers"}

# Report categories in the report's order (the issue's: what most often breaks an upgrade first), and whether an
# item of the category is a breaking candidate.
CATEGORIES = {
    "value-removed": True,
    "value-renamed": True,
    "schema-required": True,
    "schema-type": True,
    "schema-enum": True,
    "schema-invalid": True,
    "default-changed": False,
    "crd-changed": True,
    "kube-version": True,
    "dependency-major": True,
    "dependency-changed": False,
    "image-changed": False,
}


def compare(old: dict, new: dict, load, *, changelog: list[dict] | None = None, texts: bool = True) -> dict:
    """Everything that differs between two snapshots, and the upgrade report from ``old`` to ``new``.

    ``load(digests)`` returns stored sources by digest (``content``, and ``document`` for a CRD parsed when stored);
    ``texts=False`` leaves out the templates'
    line diffs (the report does not use them), as when a version is indexed.
    """
    notes: list[str] = []
    started = time.monotonic()
    values = values_diff(_values(old), _values(new), notes, (old["version"], new["version"]))
    schema = schema_diff(old.get("values_schema"), new.get("values_schema"), notes)
    if old.get("files") is None or new.get("files") is None:
        notes.append("templates and CRDs not compared: a version was indexed before ocicat kept their contents "
                     "(ocicat resync --reindex keeps them)")
        sources = []
    else:
        sources = sources_diff(old["files"], new["files"], load, notes, texts=texts)
    comparison = {
        "from": _version(old),
        "to": _version(new),
        "fields": fields_diff(old, new),
        "values": values,
        "schema": schema,
        "templates": [f for f in sources if f["path"].startswith("templates/")],
        "crds": [f for f in sources if not f["path"].startswith("templates/")],
        "dependencies": dependencies_diff(old, new),
        "images": images_diff(old, new),
        "changelog": changelog or [],
        "notes": notes,
    }
    comparison["report"] = report(comparison)
    comparison["seconds"] = round(time.monotonic() - started, 4)
    return comparison


def _values(snapshot: dict) -> dict:
    """A version's values as read when it was indexed; read now for a version indexed before they were."""
    return snapshot.get("values_parsed") or storable(parsed_values(snapshot.get("values_yaml")))


def _version(snapshot: dict) -> dict:
    return {"version": snapshot["version"], "digest": snapshot["digest"]}


# -- paths -------------------------------------------------------------------------------------------------------


def path_text(path) -> str:
    """A path of keys as Helm's --set writes it: dots join keys, a dot inside a key is escaped, indexes in []."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = re.sub(r"([\\.,=\[])", r"\\\1", str(part))
            out += f".{key}" if out else key
    return out


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=list)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 1] + "…"


# -- values ------------------------------------------------------------------------------------------------------


def parsed_values(text: str | None) -> dict:
    """values.yaml read once, when a version is indexed (helm_charts.values_parsed): ``tree``, the document, and
    ``comments``, the comment that explains each key (the comment lines right above it and one after it on its
    line), by path; or ``error``, why it cannot be read."""
    if not text:
        return {"tree": {}, "comments": {}}
    try:
        doc, key_lines = yaml_document_and_key_lines(text, "values.yaml")
    except YAMLError as exc:
        return {"error": str(exc)}
    if doc is None:
        return {"tree": {}, "comments": {}}
    if not isinstance(doc, dict):
        return {"error": "values.yaml is not a YAML map"}
    lines = text.splitlines()
    explained: dict[int, str] = {}  # line -> the comment that explains a key on it (flow maps have many a line)
    comments = {}
    for path, line in key_lines.items():
        if line not in explained:
            explained[line] = _comment(lines, line)
        if explained[line]:
            comments[path_text(path)] = explained[line]
    return {"tree": doc, "comments": comments}


def _comment(lines: list[str], line: int) -> str:
    """The comment lines right above ``line`` (up to MAX_COMMENT_LINES), and a comment after the key on it."""
    above = []
    for i in range(line - 1, max(-1, line - 1 - MAX_COMMENT_LINES), -1):
        stripped = lines[i].strip()
        if not stripped.startswith("#"):
            break
        above.append(stripped.lstrip("#").strip().removeprefix("-- "))  # "# -- ": helm-docs' marker
    after = _TRAILING_COMMENT.search(lines[line][:MAX_COMMENT * 4]) if line < len(lines) else None
    return "\n".join([*reversed(above), *([after.group(1).strip()] if after else [])]).strip()[:MAX_COMMENT]


_TRAILING_COMMENT = re.compile(r"\s#\s?(.*)$")


def _atomic_lists(value):
    """A list as one value (a tuple, which dictdiffer compares whole): Helm replaces a list, never merges it."""
    if isinstance(value, dict):
        return {k: _atomic_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_atomic_lists(v) for v in value)
    return value


def values_diff(old: dict, new: dict, notes: list[str],
                versions: tuple[str, str] = ("the old version", "the new version")) -> dict:
    """Keys added, removed, renamed (a removed and an added key with the same default and the same comment) and
    changed defaults, each with its path; lists compared whole. ``old`` and ``new``: :func:`parsed_values`."""
    result = {"added": [], "removed": [], "renamed": [], "changed": []}
    for parsed, version in ((old, versions[0]), (new, versions[1])):
        if "error" in parsed:
            notes.append(f"values not compared: {version}: {parsed['error']}")
            return result
    old_comments, new_comments = old["comments"], new["comments"]
    added, removed = [], []
    for count, (action, path, value) in enumerate(_changes_by_path(_atomic_lists(old["tree"]),
                                                                    _atomic_lists(new["tree"]))):
        if count >= MAX_CHANGES:
            notes.append(f"values: only the first {MAX_CHANGES} changes are listed")
            break
        if action == "change":
            result["changed"].append({"path": path_text(path), "from": value[0], "to": value[1],
                                      "comment": new_comments.get(path_text(path))})
        elif action == "add":
            added.append((path, value, new_comments.get(path_text(path))))
        else:
            removed.append((path, value, old_comments.get(path_text(path))))
    return _with_renames(result, added, removed)


def _changes_by_path(old: dict, new: dict):
    """(action, path, value) of each change from ``old`` to ``new``: a changed value with (old, new), each key added
    or removed with its value. dictdiffer walks lazily, so a caller that stops early (at a cap) stops the walk."""
    for action, node, change in dictdiffer.diff(old, new, dot_notation=False):
        base = tuple(node) if isinstance(node, list) else (node,) if node != "" else ()
        if action == "change":
            yield action, base, change
        else:
            for key, value in change:
                yield action, base + (key,), value


def _trivial(value) -> bool:
    return value in (None, "", 0, False) or value == {} or value == ()


def _with_renames(result: dict, added: list, removed: list) -> dict:
    """Pair a removed key with an added key that has its default and its comment, where that content is the only
    one of its kind on both sides (and has a comment or a default that says something: two keys both empty and
    uncommented are not a rename)."""
    added_by, removed_by = Counter(map(_content_key, added)), Counter(map(_content_key, removed))
    pairs = {_content_key(item): item for item in added if added_by[_content_key(item)] == 1}
    renamed = set()
    for item in removed:
        path, value, comment = item
        content = _content_key(item)
        if removed_by[content] == 1 and content in pairs and (comment or not _trivial(value)):
            renamed.add(content)
            result["renamed"].append({"from": path_text(path), "to": path_text(pairs[content][0]), "value": value,
                                      "comment": comment})
        else:
            result["removed"].append({"path": path_text(path), "value": value, "comment": comment})
    result["added"] = [{"path": path_text(p), "value": v, "comment": c} for p, v, c in added
                       if _content_key((p, v, c)) not in renamed]
    for key, entries in result.items():  # by path (a stored document's keys are in JSONB's order, not the file's)
        entries.sort(key=lambda entry: entry["to" if key == "renamed" else "path"])
    return result


def _content_key(item) -> str:
    _, value, comment = item
    return json.dumps([value, comment], sort_keys=True)


# -- the values schema -------------------------------------------------------------------------------------------


def schema_properties(schema, notes: list[str]) -> dict[str, dict]:
    """Every property a values schema describes, by path (items of an array as ``name[]``): type, enum, whether its
    parent requires it, description. Local $refs are followed (referencing, never the network). At most
    MAX_SCHEMA_NODES properties and items are visited, so $refs that lead back up cannot make it walk for ever."""
    if not isinstance(schema, dict):
        return {}
    resolver = _resolver(schema)
    found: dict[str, dict] = {}
    visits = 0
    stack = [((), schema, 0)]
    while stack:
        path, node, depth = stack.pop()
        node = _resolve(resolver, node)
        if not isinstance(node, dict) or depth > MAX_SCHEMA_DEPTH:
            continue
        required = node.get("required") if isinstance(node.get("required"), list) else []
        children = list(node["properties"].items()) if isinstance(node.get("properties"), dict) else []
        if isinstance(node.get("items"), dict) and path:
            children.append((None, node["items"]))
        for name, child in children:
            visits += 1
            if visits > MAX_SCHEMA_NODES:
                notes.append(f"schema: only the first {MAX_SCHEMA_NODES} properties and items are compared")
                return found
            if name is None:  # an array's items
                stack.append((path[:-1] + (f"{path[-1]}[]",), child, depth + 1))
                continue
            child = _resolve(resolver, child)
            if not isinstance(child, dict):
                continue
            description = child.get("description")
            found[path_text(path + (name,))] = {
                "type": _types(child.get("type")),
                "enum": child["enum"] if isinstance(child.get("enum"), list) else None,
                "required": name in required,
                "description": description[:MAX_DESCRIPTION] if isinstance(description, str) else None}
            stack.append((path + (name,), child, depth + 1))
    return found


_SCHEMA_URI = "urn:ocicat:values-schema"


def _resolver(schema: dict):
    """A resolver of the schema's own $refs, or None where referencing cannot take the schema (a "$schema" or
    "$id" that is not a string, say): its $refs are then left as they are."""
    try:
        resource = Resource.from_contents(schema, default_specification=DRAFT7)
        return Registry().with_resource(_SCHEMA_URI, resource).resolver(base_uri=_SCHEMA_URI)
    except Exception:  # noqa: BLE001 - referencing raises what it meets in a hostile schema (AttributeError, ...)
        return None


def _resolve(resolver, node):
    """A schema node with its local $ref followed (a chain of them up to a bound); unresolvable: left as it is."""
    for _ in range(MAX_SCHEMA_DEPTH):
        if resolver is None or not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            return node
        try:
            node = resolver.lookup(node["$ref"]).contents
        except Exception:  # noqa: BLE001 - as in _resolver; Unresolvable is the usual one
            return node
    return node


def _types(value) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return sorted(str(v) for v in value)
    return None


def _narrowed(before: list[str] | None, after: list[str] | None) -> bool:
    """Whether a value of a type the old schema allowed may now be refused (an integer is a number)."""
    if after is None:
        return False
    gone = set(before or ["array", "boolean", "null", "number", "object", "string"]) - set(after)
    if "number" in after:
        gone.discard("integer")
    return bool(gone)


def _checkable(schema) -> bool:
    """Whether jsonschema's check of the schema against its metaschema has a bounded cost: at most MAX_SCHEMA_NODES
    JSON values, and arrays of maps or arrays small enough to compare pair by pair (draft-04's uniqueItems on
    "enum" does that: 9 enums of 1,000 objects took 7 s), MAX_PAIRWISE pairs in all."""
    seen, pairs, stack = 0, 0, [schema]
    while stack:
        value = stack.pop()
        seen += 1
        if seen > MAX_SCHEMA_NODES:
            return False
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            if any(isinstance(item, (dict, list)) for item in value):
                pairs += len(value) * len(value)
                if pairs > MAX_PAIRWISE:
                    return False
            stack.extend(value)
    return True


def schema_diff(old, new, notes: list[str]) -> dict:
    """Properties added, removed, newly required, and with a changed type or enum; whether the new schema is a
    valid JSON Schema at all (Helm refuses to install with one that is not)."""
    result = {"added": [], "removed": [], "required": [], "type_changed": [], "enum_changed": [], "invalid": None}
    if old == new:
        return result
    if isinstance(new, dict):
        if not _checkable(new):
            notes.append(f"schema: not checked against its metaschema (over {MAX_SCHEMA_NODES} values, or arrays of "
                         "maps too long to compare pair by pair)")
        else:
            try:
                jsonschema.validators.validator_for(new, default=jsonschema.Draft7Validator).check_schema(new)
            except jsonschema.SchemaError as exc:
                result["invalid"] = exc.message[:500]
            except Exception as exc:  # noqa: BLE001 - a hostile "$schema" can make jsonschema raise anything
                result["invalid"] = f"{type(exc).__name__}: {exc}"[:500]
    before, after = schema_properties(old, notes), schema_properties(new, notes)
    enums = _EnumKeys()
    for path, prop in after.items():
        was = before.get(path)
        if was is None:
            result["added"].append(_shown_property(path, prop))
            if prop["required"]:
                result["required"].append({"path": path, "new": True})
            continue
        if prop["required"] and not was["required"]:
            result["required"].append({"path": path, "new": False})
        if prop["type"] != was["type"]:
            result["type_changed"].append({"path": path, "from": was["type"], "to": prop["type"],
                                           "narrowed": _narrowed(was["type"], prop["type"])})
        if prop["enum"] is not was["enum"] and enums.of(prop["enum"]) != enums.of(was["enum"]):
            gone = enums.of(was["enum"]) - enums.of(prop["enum"]) if prop["enum"] is not None else set()
            result["enum_changed"].append({"path": path, "from": _shown_enum(was["enum"]),
                                           "to": _shown_enum(prop["enum"]),
                                           "removed": [json.loads(v) for v in sorted(gone)[:MAX_ENUM_SHOWN]]})
    result["removed"] = [_shown_property(path, prop) for path, prop in before.items() if path not in after]
    return result


def _shown_enum(enum: list | None) -> str:
    """An enum as a report quotes it, from its first values only (thousands of properties may share a long one)."""
    return _shown(enum if enum is None or len(enum) <= MAX_ENUM_SHOWN else [*enum[:MAX_ENUM_SHOWN], "…"])


def _shown_property(path: str, prop: dict) -> dict:
    return {"path": path, "type": prop["type"], "required": prop["required"], "description": prop["description"]}


class _EnumKeys:
    """An enum as a set of its values' canonical JSON (its first MAX_ENUM), worked out once per enum: $refs let
    thousands of properties share one."""

    def __init__(self):
        self._keys: dict[int, tuple[list, frozenset]] = {}

    def of(self, enum: list | None) -> frozenset:
        if enum is None:
            return frozenset()
        known = self._keys.get(id(enum))
        if known is None:
            known = self._keys[id(enum)] = (enum, frozenset(json.dumps(v, sort_keys=True) for v in enum[:MAX_ENUM]))
        return known[1]


# -- templates and CRDs ------------------------------------------------------------------------------------------


def sources_diff(old: dict, new: dict, load, notes: list[str], *, texts: bool) -> list[dict]:
    """Each template and CRD added, removed or changed; changed ones with a unified diff (CRDs always, templates
    when ``texts``), and for a CRD the paths of its changed fields."""
    changed = sorted(p for p in old.keys() & new.keys() if old[p]["digest"] != new[p]["digest"])
    wanted = [p for p in changed if texts or not p.startswith("templates/")]
    stored = load({d for p in wanted for d in (old[p]["digest"], new[p]["digest"])}) if wanted else {}
    out = [{"path": p, "status": "added"} for p in new.keys() - old.keys()]
    out += [{"path": p, "status": "removed"} for p in old.keys() - new.keys()]
    budget = {"bytes": MAX_DIFF_BYTES, "deadline": time.monotonic() + TEXT_DIFF_SECONDS}
    for path in changed:
        entry = {"path": path, "status": "changed"}
        if path in wanted:
            before, after = stored.get(old[path]["digest"]), stored.get(new[path]["digest"])
            entry["diff"] = _unified(path, before and before["content"], after and after["content"], budget, notes)
            if not path.startswith("templates/"):
                entry["fields"] = _crd_fields(before, after)
        if old[path].get("truncated") or new[path].get("truncated"):
            entry["truncated"] = True
        out.append(entry)
    return sorted(out, key=lambda f: f["path"])


def _unified(path: str, before: str | None, after: str | None, budget: dict, notes: list[str]) -> str | None:
    """A unified diff of two texts. Lines the two share at their start and end are set aside first (a linear scan),
    so a large CRD with one field changed is cheap; what is left is diffed only while the product of its lengths
    stays under MAX_DIFF_CELLS (difflib's worst case grows with it), and within the comparison's budget."""
    if before is None or after is None:
        return None
    if budget["bytes"] <= 0 or time.monotonic() > budget["deadline"]:
        notes.append(f"{path}: not diffed, the comparison's diff budget is spent")
        return None
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    if (len(a) - start - end) * (len(b) - start - end) > MAX_DIFF_CELLS:
        notes.append(f"{path}: too much changed to diff line by line")
        return None
    # The diff of the changed middle with its context, line numbers put back where the files have them.
    first = max(0, start - DIFF_CONTEXT)
    middle = difflib.unified_diff(a[first:len(a) - max(0, end - DIFF_CONTEXT)],
                                  b[first:len(b) - max(0, end - DIFF_CONTEXT)],
                                  fromfile=f"a/{path}", tofile=f"b/{path}", n=DIFF_CONTEXT)
    text = "".join(_HUNK.sub(lambda m: _moved_hunk(m, first), line) if line.startswith("@@") else line
                   for line in middle)
    budget["bytes"] -= len(text)
    return text


_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


def _moved_hunk(match: re.Match, offset: int) -> str:
    """A hunk header of a slice starting at line ``offset``, in the whole file's line numbers (a hunk of no lines
    names the line before it, 0 at the start, and keeps it so)."""
    old, new = int(match.group(1)), int(match.group(3))
    old_count, new_count = match.group(2) or "", match.group(4) or ""
    return (f"@@ -{old + offset if old or old_count != ',0' else old}{old_count} "
            f"+{new + offset if new or new_count != ',0' else new}{new_count} @@")


def crd_document(text: str) -> dict | None:
    """A CRD file's first document (as Helm's loader reads a CRD file), parsed once when its content is stored
    (chart_sources.document); None if it is not a YAML map."""
    try:
        doc = yaml_document(text, "CRD")
    except YAMLError:
        return None
    return storable(doc) if isinstance(doc, dict) else None


def _crd_fields(before: dict | None, after: dict | None) -> list[str]:
    """The paths of a CRD's changed fields, from the stored sources (content, and document if parsed)."""
    if before is None or after is None:
        return []
    old, new = (s["document"] if s.get("document") is not None else crd_document(s["content"]) for s in (before, after))
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return []
    paths = [path_text(path) for _, path, _ in islice(_changes_by_path(old, new), MAX_CRD_FIELDS)]
    return paths


# -- Chart.yaml, dependencies, images ----------------------------------------------------------------------------


def fields_diff(old: dict, new: dict) -> list[dict]:
    return [{"field": name, "from": old.get(column), "to": new.get(column)} for name, column in FIELDS.items()
            if old.get(column) != new.get(column)]


def _major(version) -> int | None:
    """The major number a dependency's version or constraint names ("~12.1.0", "12.x.x", "^1.2"): written here
    because a constraint's first number is all a major bump needs, where a range library would parse every form."""
    match = re.search(r"\d+", str(version or ""))
    return int(match.group()) if match else None


def _dependencies(snapshot: dict) -> dict[str, dict]:
    """Dependencies by alias or name (strings only: Chart.yaml and Chart.lock are the pusher's), with the version
    Chart.lock resolved."""
    lock = snapshot.get("chart_lock")
    locked = {d["name"]: d.get("version") for d in (lock.get("dependencies") if isinstance(lock, dict) else None) or []
              if isinstance(d, dict) and isinstance(d.get("name"), str)}
    out = {}
    for dep in snapshot.get("dependencies") or []:
        if isinstance(dep, dict) and isinstance(dep.get("name"), str) and dep["name"]:
            key = dep["alias"] if isinstance(dep.get("alias"), str) and dep["alias"] else dep["name"]
            out[key] = {"name": dep["name"], "version": _text(dep.get("version")),
                        "locked": _text(locked.get(dep["name"])), "repository": _text(dep.get("repository"))}
    return out


def _text(value) -> str | None:
    return None if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _changes(before: dict, after: dict, same):
    """(key, status, before's, after's) of each key added, removed, or changed (not ``same``), by key."""
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        if was is None or now is None or not same(was, now):
            yield key, "added" if was is None else "removed" if now is None else "changed", was, now


def dependencies_diff(old: dict, new: dict) -> list[dict]:
    out = []
    for key, status, was, now in _changes(_dependencies(old), _dependencies(new), operator.eq):
        entry = {"name": key, "status": status, "from": was and (was["locked"] or was["version"]),
                 "to": now and (now["locked"] or now["version"])}
        majors = _major(entry["from"]), _major(entry["to"])
        entry["major"] = status == "changed" and None not in majors and majors[1] > majors[0]
        out.append(entry)
    return out


def image_reference(reference: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference: the tag is after the last ":" that follows the last "/"."""
    name, _, digest = reference.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:], digest or None
    return name, None, digest or None


def _images(snapshot: dict) -> dict[str, dict]:
    out = {}
    for image in (snapshot.get("artifacthub") or {}).get("images") or []:
        reference = image.get("image") if isinstance(image, dict) else None
        if isinstance(reference, str) and reference:
            repository, tag, digest = image_reference(reference.strip())
            out[repository] = {"name": image.get("name"), "tag": tag, "digest": digest, "image": reference}
    return out


def _same_image(a: dict, b: dict) -> bool:
    return (a["tag"], a["digest"]) == (b["tag"], b["digest"])


def images_diff(old: dict, new: dict) -> list[dict]:
    return [{"repository": repository, "name": (now or was)["name"], "status": status, "from": was and was["image"],
             "to": now and now["image"]}
            for repository, status, was, now in _changes(_images(old), _images(new), _same_image)]


# -- the report --------------------------------------------------------------------------------------------------


def report(comparison: dict) -> dict:
    """The upgrade report: a short list, in CATEGORIES order (breaking candidates flagged), of what may need the
    user's attention when upgrading from ``from`` to ``to``; the comparison itself has the rest."""
    values, schema = comparison["values"], comparison["schema"]
    items = [
        *({"category": "value-removed", "path": v["path"], "from": _shown(v["value"])} for v in values["removed"]),
        *({"category": "value-renamed", "path": v["to"], "from": v["from"]} for v in values["renamed"]),
        *({"category": "schema-required", "path": s["path"]} for s in schema["required"]),
        *({"category": "schema-type", "path": s["path"], "from": _shown(s["from"]), "to": _shown(s["to"])}
          for s in schema["type_changed"] if s["narrowed"]),
        *({"category": "schema-enum", "path": s["path"], "from": _shown(s["removed"])}
          for s in schema["enum_changed"] if s["removed"]),
        *([{"category": "schema-invalid", "path": "values.schema.json", "to": schema["invalid"]}]
          if schema["invalid"] else []),
        *({"category": "default-changed", "path": v["path"], "from": _shown(v["from"]), "to": _shown(v["to"])}
          for v in values["changed"]),
        *({"category": "crd-changed", "path": c["path"], "to": c["status"], "fields": c.get("fields", [])}
          for c in comparison["crds"]),
        *({"category": "kube-version", "path": "kubeVersion", "from": f["from"], "to": f["to"]}
          for f in comparison["fields"] if f["field"] == "kubeVersion"),
        *({"category": "dependency-major" if d["major"] else "dependency-changed", "path": d["name"],
           "from": d["from"], "to": d["to"]} for d in comparison["dependencies"]),
        *({"category": "image-changed", "path": i["repository"], "from": i["from"], "to": i["to"]}
          for i in comparison["images"]),
    ]
    order = list(CATEGORIES)
    items.sort(key=lambda item: (order.index(item["category"]), item["path"]))
    for item in items:
        item["breaking"] = CATEGORIES[item["category"]]
    return {"from": comparison["from"], "breaking": sum(i["breaking"] for i in items), "changes": len(items),
            "items": items[:MAX_REPORT_ITEMS], "more": max(0, len(items) - MAX_REPORT_ITEMS),
            "notes": list(comparison["notes"])}
