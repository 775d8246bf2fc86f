"""indexer.chart_archive against real archives: Helm's own, hand-built ones, and a hostile corpus."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import sys
import tarfile

import pytest

from harness.chart_archives import (
    CHART_YAML,
    END_OF_ARCHIVE,
    CountingReader,
    MiB,
    chart_tgz,
    entry,
    gzip_pieces,
    header,
    many_files_bomb,
    one_file_bomb,
    tgz,
    tiny_files_tar,
    trailing_zeros_bomb,
)
from indexer import chart_archive
from indexer.chart_archive import ChartArchiveError, read_chart_archive

# -- nothing may touch the filesystem ------------------------------------------------

_changes: list | None = None  # while a list, the audit hook below records filesystem changes into it
_CHANGING_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link", "os.chmod", "os.utime"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _audit(event: str, args: tuple) -> None:
    if _changes is None:
        return
    if event == "open":
        path, mode, flags = args
        if (isinstance(mode, str) and set(mode) & set("wax+")) or (flags or 0) & _WRITE_FLAGS:
            _changes.append((event, path))
    elif event in _CHANGING_EVENTS:
        _changes.append((event, args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed; it does nothing outside _no_filesystem_changes


@contextlib.contextmanager
def _no_filesystem_changes():
    global _changes
    _changes = []
    try:
        yield
    finally:
        changes, _changes = _changes, None
    assert changes == [], f"parsing changed the filesystem: {changes}"


@pytest.fixture(autouse=True)
def in_empty_directory(tmp_path, monkeypatch):
    """Run each test in an empty working directory, and check that it stays empty."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    yield
    assert list(workdir.iterdir()) == []


def parse(data: bytes, **limits):
    with _no_filesystem_changes():
        return read_chart_archive(io.BytesIO(data), **limits)


def refusal(data: bytes, **limits) -> str:
    with pytest.raises(ChartArchiveError) as caught, _no_filesystem_changes():
        read_chart_archive(io.BytesIO(data), **limits)
    reason = str(caught.value)
    assert "\n" not in reason
    return reason


def chart(files: dict | None = None) -> bytes:
    """A chart archive of ``files`` and a minimal Chart.yaml."""
    return chart_tgz({"Chart.yaml": CHART_YAML, **(files or {})})


# -- well-formed charts -----------------------------------------------------------------


def test_chart_packaged_by_helm(tmp_path_factory):
    import helm_python as helm

    workdir = tmp_path_factory.mktemp("helm")
    helm.Chart.create("webapp", workdir)
    source = workdir / "webapp"
    (source / "README.md").write_text("# webapp\n\nA chart.\n")
    (source / "crds").mkdir()
    (source / "crds" / "widgets.yaml").write_text("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n")
    (source / "values.schema.json").write_text('{"type": "object"}')
    archive = helm.package(source, destination=workdir)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]

    with open(archive, "rb") as stream, _no_filesystem_changes():
        contents = read_chart_archive(stream)

    assert contents.chart_yaml["name"] == "webapp"
    assert contents.chart_yaml["apiVersion"] == "v2"
    assert contents.readme == "# webapp\n\nA chart.\n"
    assert contents.values == (source / "values.yaml").read_text()
    assert contents.values_schema == {"type": "object"}
    expected_templates = sorted(m.name.split("/", 1)[1] for m in members if m.name.startswith("webapp/templates/"))
    assert contents.templates == expected_templates
    assert "templates/deployment.yaml" in contents.templates
    assert "templates/tests/test-connection.yaml" in contents.templates
    assert contents.crds == ["crds/widgets.yaml"]
    assert contents.files == len(members)
    assert contents.total_bytes == sum(m.size for m in members)
    assert contents.chart_lock is None and contents.requirements is None and contents.warnings == []


@pytest.mark.parametrize(
    "names, chosen",
    [
        (["README.md"], "README.md"),
        (["readme.txt", "README"], "readme.txt"),
        (["README"], "README"),
        (["README.TXT", "Readme.md"], "Readme.md"),  # .md wins whatever the order
        (["README.md", "readme.md"], "README.md"),  # equally good: the first one
        (["docs/README.md", "charts/sub/README.md"], None),  # only the chart root counts
    ],
)
def test_readme_variants(names, chosen):
    archive = chart_tgz({"Chart.yaml": CHART_YAML, **{name: f"this is {name}" for name in names}})
    readme = parse(archive).readme
    assert readme == (None if chosen is None else f"this is {chosen}")


def test_text_is_decoded_forgivingly():
    bom = b"\xef\xbb\xbf"
    contents = parse(
        chart_tgz(
            {
                "Chart.yaml": bom + CHART_YAML.encode(),
                "README.md": bom + b"caf\xc3\xa9 \xff and NUL\x00 here",
                "values.yaml": bom + b"replicas: 1\n",
            }
        )
    )
    assert contents.chart_yaml["name"] == "demo"  # parsed despite the BOM
    # Bad UTF-8 and NUL (which PostgreSQL text cannot hold) both become U+FFFD.
    assert contents.readme == "caf\u00e9 \ufffd and NUL\ufffd here"
    assert contents.values == "replicas: 1\n"


def test_templates_and_crds_are_listed_sorted():
    contents = parse(
        chart(
            {
                "templates/service.yaml": "",
                "templates/_helpers.tpl": "",
                "templates/tests/test.yaml": "",
                "crds/b.json": "{}",
                "crds/a.yaml": "",
                "crds/A.YML": "",
                "crds/notes.txt": "not installed by Helm, so not a CRD",
            }
        )
    )
    assert contents.templates == ["templates/_helpers.tpl", "templates/service.yaml", "templates/tests/test.yaml"]
    assert contents.crds == ["crds/A.YML", "crds/a.yaml", "crds/b.json"]


def test_values_schema_is_parsed():
    schema = '{"$schema": "https://json-schema.org/draft-07/schema#", "properties": {"replicas": {"type": "integer"}}}'
    contents = parse(chart({"values.schema.json": schema}))
    assert contents.values_schema["properties"] == {"replicas": {"type": "integer"}}
    assert contents.warnings == []


@pytest.mark.parametrize(
    "schema, warning",
    [
        ("{not json", "values.schema.json is not JSON"),
        ("[1, 2]", "values.schema.json is not a JSON object"),
        ('{"maximum": NaN}', "values.schema.json holds a value JSON cannot represent"),
        ('{"a": ' * 5000 + "1" + "}" * 5000, "values.schema.json is nested too deeply"),
    ],
)
def test_a_bad_values_schema_is_a_warning(schema, warning):
    contents = parse(chart({"values.schema.json": schema}))
    assert contents.values_schema is None
    assert len(contents.warnings) == 1 and contents.warnings[0].startswith(warning)
    assert contents.warnings[0].endswith("; schema ignored")


def test_chart_lock_is_parsed_as_json():
    lock = (
        "dependencies:\n- name: common\n  repository: oci://registry-1.docker.io/bitnamicharts\n  version: 2.19.0\n"
        "digest: sha256:0123\ngenerated: 2024-05-01T10:00:00.123456+02:00\n"
    )
    contents = parse(chart({"Chart.lock": lock}))
    assert contents.chart_lock == {
        "dependencies": [
            {"name": "common", "repository": "oci://registry-1.docker.io/bitnamicharts", "version": "2.19.0"}
        ],
        "digest": "sha256:0123",
        "generated": "2024-05-01T10:00:00.123456+02:00",  # a string, as in JSON; not a datetime
    }


def test_yaml_becomes_plain_json():
    chart_yaml = CHART_YAML + 'annotations:\n  1: one\n  1.0: float\n  true: yes\n  ~: null\n  nul: "a\\0b"\n'
    contents = parse(chart_tgz({"Chart.yaml": chart_yaml}))
    # As Python keys 1, 1.0 and True are equal; as JSON keys they are not.
    assert contents.chart_yaml["annotations"] == {
        "1": "one", "1.0": "float", "true": True, "null": None, "nul": "a\ufffdb"
    }


def test_nul_and_lone_surrogates_are_replaced_but_look_alike_text_is_not():
    schema = r'{"nul": "a\u0000b", "literal": "a\\u0000b", "both": "\\\u0000", "lone": "\ud800", "pair": "\ud83d\ude00"}'
    contents = parse(chart({"values.schema.json": schema, "Chart.lock": 'digest: "x\\\\u0000 \\0"\n'}))
    assert contents.values_schema == {
        "nul": "a\ufffdb",
        "literal": "a\\u0000b",
        "both": "\\\ufffd",
        "lone": "\ufffd" * 3,  # one per byte of its UTF-8 form
        "pair": "\U0001f600",
    }
    assert contents.chart_lock == {"digest": "x\\u0000 \ufffd"}


def test_only_the_first_yaml_document_counts():
    contents = parse(chart_tgz({"Chart.yaml": CHART_YAML + "---\nname: other\n---\n: : not even valid"}))
    assert contents.chart_yaml["name"] == "demo"


def test_requirements_of_a_v1_chart():
    requirements = "dependencies:\n- name: mariadb\n  version: 7.x.x\n  repository: https://charts.example.com\n"
    contents = parse(chart_tgz({"Chart.yaml": "name: legacy\nversion: 1.0.0\n", "requirements.yaml": requirements}))
    # No apiVersion means v1, as in Helm.
    assert contents.requirements == [{"name": "mariadb", "version": "7.x.x", "repository": "https://charts.example.com"}]
    assert contents.warnings == []


def test_requirements_in_a_v2_chart_are_kept_with_a_warning():
    contents = parse(chart({"requirements.yaml": "dependencies:\n- name: redis\n  version: 1.0.0\n"}))
    assert contents.requirements == [{"name": "redis", "version": "1.0.0"}]
    assert contents.warnings == [
        "requirements.yaml is for apiVersion v1 charts; dependencies belong in Chart.yaml"
    ]


def test_subcharts_count_but_are_not_the_chart():
    subchart = {
        "charts/redis/Chart.yaml": "apiVersion: v2\nname: redis\nversion: 1.0.0\n",
        "charts/redis/README.md": "redis readme",
        "charts/redis/values.yaml": "redis: true\n",
        "charts/redis/values.schema.json": "{}",
        "charts/redis/Chart.lock": "digest: x\n",
        "charts/redis/templates/redis.yaml": "kind: StatefulSet\n",
        "charts/redis/crds/crd.yaml": "kind: CustomResourceDefinition\n",
        "charts/common-2.0.0.tgz": chart_tgz({"Chart.yaml": "name: common\nversion: 2.0.0\n"}, top="common"),
    }
    contents = parse(chart_tgz({"Chart.yaml": CHART_YAML, "templates/app.yaml": "kind: Deployment\n", **subchart}))
    assert contents.chart_yaml["name"] == "demo"
    assert contents.readme is None and contents.values is None and contents.values_schema is None
    assert contents.chart_lock is None
    assert contents.templates == ["templates/app.yaml"]
    assert contents.crds == []
    assert contents.files == 2 + len(subchart)
    assert contents.total_bytes == len(CHART_YAML) + len("kind: Deployment\n") + sum(
        len(v if isinstance(v, bytes) else v.encode()) for v in subchart.values()
    )


def test_an_archive_of_dot_works_like_in_helm():
    # ``tar -C mychart -czf mychart.tgz .``: Helm strips the "." like any other directory.
    contents = parse(tgz([(entry(".", tarfile.DIRTYPE), None), ("./Chart.yaml", CHART_YAML), ("./templates/a.yaml", "")]))
    assert contents.templates == ["templates/a.yaml"]


def test_long_paths_in_pax_headers():
    long_name = "templates/" + "very-long-directory-name/" * 8 + "deployment.yaml"
    contents = parse(chart({long_name: "kind: Deployment\n"}))
    assert contents.templates == [long_name]


def _alias_bomb(levels: int = 9) -> str:
    """A billion laughs: 10**levels nodes once the aliases are expanded."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


def test_a_values_alias_bomb_is_only_text():
    # values.yaml is stored as text, never parsed, so a bomb in it costs nothing.
    assert parse(chart({"values.yaml": _alias_bomb()})).values == _alias_bomb()


def test_the_filesystem_guard_notices_extraction(tmp_path):
    # What the guard is for: tarfile's extraction writes, and would be caught.
    with pytest.raises(AssertionError, match="parsing changed the filesystem"):
        with _no_filesystem_changes(), tarfile.open(fileobj=io.BytesIO(chart())) as tar:
            tar.extractall(tmp_path / "out", filter="data")
    assert (tmp_path / "out" / "demo" / "Chart.yaml").read_text() == CHART_YAML


# -- hostile and broken archives ------------------------------------------------------


def _chained_pax_headers(count: int) -> bytes:
    """``count`` PAX headers in a row before one file: tarfile applies each by recursing into the next."""
    record = b"13 comment=c\n"  # a PAX record counts its own length
    pax = header("demo/././@PaxHeader", len(record), tarfile.XHDTYPE) + record.ljust(tarfile.BLOCKSIZE, b"\0")
    return gzip.compress(pax * count + header("demo/Chart.yaml", 0) + END_OF_ARCHIVE)


def _truncated(archive: bytes) -> bytes:
    return archive[: len(archive) // 2]


def _with_bad_crc(archive: bytes) -> bytes:
    return archive[:-8] + bytes([archive[-8] ^ 0xFF]) + archive[-7:]


HOSTILE = {
    "gzip bomb: one 1 GiB file": (one_file_bomb, "values.yaml is larger than the 5 MiB limit for one file"),
    "a 6 MiB values.yaml": (
        lambda: chart({"values.yaml": "a: " + "x" * (6 * MiB)}),
        "values.yaml is larger than the 5 MiB limit for one file",
    ),
    "21 files of 5 MiB": (lambda: many_files_bomb(21), "chart files add up to more than 100 MiB"),
    "1 GiB of zeros after the tar": (trailing_zeros_bomb, "archive inflates to more than 120.5 MiB"),
    "100k tiny files": (
        lambda: gzip.compress(tiny_files_tar(100_000), compresslevel=1),
        "archive has more than 10000 entries",
    ),
    "a 1 GiB PAX header": (
        lambda: gzip_pieces([header("demo/././@PaxHeader", 1024 * MiB, tarfile.XHDTYPE)]),
        "tar extension header of 1073741824 bytes (limit 1 MiB)",
    ),
    "a 2 MiB GNU long name": (
        lambda: gzip_pieces([header("././@LongLink", 2 * MiB, tarfile.GNUTYPE_LONGNAME)]),
        "tar extension header of 2097152 bytes (limit 1 MiB)",
    ),
    "2000 chained PAX headers": (lambda: _chained_pax_headers(2000), "tar extension headers are nested too deeply"),
    "../evil": (lambda: tgz([("demo/Chart.yaml", CHART_YAML), ("demo/../evil", "x")]), "leaves the chart directory"),
    "../ at the top": (lambda: tgz([("../evil/Chart.yaml", CHART_YAML)]), "leaves the chart directory"),
    "/etc/passwd": (lambda: tgz([("/etc/passwd", "root:x:0:0")]), "absolute path in archive: '/etc/passwd'"),
    "a backslash": (lambda: tgz([("demo\\..\\evil", "x")]), "backslash in archive path"),
    "a drive letter": (lambda: tgz([("demo/C:/evil", "x")]), "drive letter in archive path"),
    "a symlink": (
        lambda: tgz([("demo/Chart.yaml", CHART_YAML), (entry("demo/values.yaml", tarfile.SYMTYPE, linkname="/etc/shadow"), None)]),
        "archive contains a link: 'demo/values.yaml'",
    ),
    "a hardlink": (
        lambda: tgz([("demo/Chart.yaml", CHART_YAML), (entry("demo/x.yaml", tarfile.LNKTYPE, linkname="demo/Chart.yaml"), None)]),
        "archive contains a link: 'demo/x.yaml'",
    ),
    "a character device": (
        lambda: tgz([(entry("demo/null", tarfile.CHRTYPE, devmajor=1, devminor=3), None)]),
        "archive contains a device file or FIFO: 'demo/null'",
    ),
    "a block device": (
        lambda: tgz([(entry("demo/sda", tarfile.BLKTYPE, devmajor=8, devminor=0), None)]),
        "archive contains a device file or FIFO: 'demo/sda'",
    ),
    "a FIFO": (
        lambda: tgz([(entry("demo/pipe", tarfile.FIFOTYPE), None)]),
        "archive contains a device file or FIFO: 'demo/pipe'",
    ),
    "an unknown entry type": (
        lambda: tgz([(entry("demo/volume", b"V"), None)]),
        "archive contains an unsupported entry type b'V': 'demo/volume'",
    ),
    "a negative size": (
        lambda: tgz([("demo/Chart.yaml", CHART_YAML), (entry("demo/x", tarfile.REGTYPE, pax_headers={"size": "-5"}), None)]),
        "negative size for 'demo/x'",
    ),
    "Chart.yaml at the archive root": (lambda: tgz([("Chart.yaml", CHART_YAML)]), "Chart.yaml is at the archive root"),
    "a file at the archive root": (
        lambda: tgz([("README.md", "hi")]),
        "file outside the chart directory: 'README.md'",
    ),
    "two top-level directories": (
        lambda: tgz([("one/Chart.yaml", CHART_YAML), ("two/Chart.yaml", CHART_YAML)]),
        "archive has more than one top-level directory: 'one' and 'two'",
    ),
    "the same file twice": (
        lambda: tgz([("demo/Chart.yaml", CHART_YAML), ("demo/./Chart.yaml", CHART_YAML)]),
        "archive contains 'demo/./Chart.yaml' twice",
    ),
    "not gzip": (lambda: b"apiVersion: v2\nname: demo\n", "archive is not valid gzip data"),
    "a zip file": (lambda: b"PK\x03\x04" + bytes(100), "archive is not valid gzip data"),
    "truncated": (lambda: _truncated(chart({"values.yaml": "x: 1\n" * 5000})), "archive is truncated (gzip stream ends early)"),
    "a bad CRC": (lambda: _with_bad_crc(chart()), "incorrect data check"),
    "no bytes at all": (lambda: b"", "archive is empty"),
    "gzip of nothing": (lambda: gzip.compress(b""), "not a valid tar archive: empty file"),
    "gzip of text": (lambda: gzip.compress(b"hello " * 200), "not a valid tar archive"),
    "an empty tar": (lambda: tgz([]), "archive contains no files"),
    "only directories": (lambda: tgz([(entry("demo", tarfile.DIRTYPE), None)]), "archive contains no files"),
    "no Chart.yaml": (lambda: chart_tgz({"values.yaml": "a: 1\n"}), "archive has no Chart.yaml in its chart directory"),
    "invalid YAML in Chart.yaml": (
        lambda: chart_tgz({"Chart.yaml": "name: demo\nversion: [0.1.0\n"}),
        "Chart.yaml is not valid YAML: ",
    ),
    "a control character in Chart.yaml": (
        lambda: chart_tgz({"Chart.yaml": CHART_YAML + "x: \x07\n"}),
        "Chart.yaml is not valid YAML: unacceptable character #x0007: control characters are not allowed",
    ),
    "an empty Chart.yaml": (lambda: chart_tgz({"Chart.yaml": "# nothing\n"}), "Chart.yaml is empty"),
    "Chart.yaml is a list": (lambda: chart_tgz({"Chart.yaml": "- name\n- version\n"}), "Chart.yaml is not a YAML map"),
    "a !!binary value": (
        lambda: chart_tgz({"Chart.yaml": CHART_YAML + "icon: !!binary aGVsbG8=\n"}),
        "Chart.yaml holds a value JSON cannot represent",
    ),
    "a !!binary key": (
        lambda: chart_tgz({"Chart.yaml": CHART_YAML + "? !!binary aGVsbG8=\n: x\n"}),
        "Chart.yaml is not valid YAML: found a mapping key JSON cannot represent (bytes) (line 4, column 3)",
    ),
    "a Python tag": (
        lambda: chart_tgz({"Chart.yaml": CHART_YAML + "x: !!python/object/apply:os.system [id]\n"}),
        "Chart.yaml is not valid YAML: could not determine a constructor",
    ),
    "an alias bomb in Chart.yaml": (
        lambda: chart_tgz({"Chart.yaml": CHART_YAML + _alias_bomb()}),
        "Chart.yaml expands to more than 100000 YAML nodes (alias bomb?)",
    ),
    "an alias bomb in Chart.lock": (
        lambda: chart({"Chart.lock": _alias_bomb()}),
        "Chart.lock expands to more than 100000 YAML nodes (alias bomb?)",
    ),
    "a recursive alias": (
        lambda: chart({"requirements.yaml": "dependencies: &d\n- *d\n"}),
        "requirements.yaml uses an undefined or recursive alias *d",
    ),
    # The C YAML loader recurses in C: this would crash the process, not raise. PyYAML 6.0.4's
    # libyaml refuses past 1,000 levels in its scanner, before the reader's own check sees them.
    "100k nested lists": (
        lambda: chart_tgz({"Chart.yaml": "x: " + "[" * 100_000 + "]" * 100_000}),
        re.compile(r"Chart\.yaml (nests deeper than 100 levels|is not valid YAML: exceeded maximum nesting depth)"),
    ),
    "bad requirements": (
        lambda: chart({"requirements.yaml": "dependencies: redis\n"}),
        "requirements.yaml dependencies must be a list of maps",
    ),
}


@pytest.mark.parametrize("build, reason", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_archive_is_refused(build, reason):
    refused = refusal(build())
    assert reason.search(refused) if isinstance(reason, re.Pattern) else reason in refused, refused


def test_limits_can_be_lowered():
    archive = chart({"values.yaml": "x" * 2000, "templates/a.yaml": "y" * 900})
    assert refusal(archive, max_file=1000) == "values.yaml is larger than the 1000 bytes limit for one file"
    assert refusal(archive, max_total=2500) == "chart files add up to more than 2500 bytes"
    assert refusal(archive, max_entries=2) == "archive has more than 2 entries"
    assert refusal(archive, max_compressed=100) == "compressed archive is larger than 100 bytes"


def test_a_one_file_bomb_is_refused_from_its_header():
    archive = one_file_bomb()
    assert len(archive) < 2 * MiB  # 1 GiB of zeros, compressed
    source = CountingReader(archive)
    with pytest.raises(ChartArchiveError):
        read_chart_archive(source)
    assert source.consumed <= 64 * 1024  # the first chunk held the header: nothing was inflated past it


def test_inflating_stops_at_the_budget():
    archive = trailing_zeros_bomb()
    source = CountingReader(archive)
    with pytest.raises(ChartArchiveError):
        read_chart_archive(source)
    # About 121 MiB of the 1 GiB was inflated: a ninth of the input, give or take a chunk.
    assert source.consumed < len(archive) / 6


def test_template_and_crd_contents_are_kept_up_to_their_caps(monkeypatch):
    monkeypatch.setattr(chart_archive, "MAX_SOURCE", 10)
    monkeypatch.setattr(chart_archive, "MAX_SOURCES", 25)
    archive = chart_tgz({"Chart.yaml": CHART_YAML, "templates/a.yaml": "0123456789abc", "templates/b.yaml": "short",
                         "crds/c.yaml": "kind: CustomResourceDefinition", "crds/notes.txt": "not a manifest",
                         "charts/sub/templates/x.yaml": "a subchart's"})
    sources = read_chart_archive(io.BytesIO(archive)).sources
    assert sources == [
        {"path": "crds/c.yaml", "content": "kind: Cust", "size": 30, "truncated": True},  # cut at 10 bytes a file
        {"path": "templates/a.yaml", "content": "0123456789", "size": 13, "truncated": True},
        {"path": "templates/b.yaml", "content": "short", "size": 5, "truncated": False},
    ]
    # The budget for all of them (25 bytes) is spent by then: a next file keeps nothing.
    more = chart_tgz({"Chart.yaml": CHART_YAML, "templates/a.yaml": "0123456789", "templates/b.yaml": "0123456789",
                      "templates/c.yaml": "0123456789", "templates/d.yaml": "x"})
    assert [(s["content"], s["truncated"]) for s in read_chart_archive(io.BytesIO(more)).sources] == [
        ("0123456789", False), ("0123456789", False), ("01234", True), ("", True)]
