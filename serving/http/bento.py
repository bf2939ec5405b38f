"""``retain build``: a Bento holding the service and the champion models, so it can be
deployed from the Bento alone, without the tracking server.

The champions are imported with ``bentoml.mlflow.import_model`` (their registry version and
``/models`` details kept in the BentoML model's metadata). The Bento's entry module declares
them on the service (``use_bento_models``), which makes ``bentoml build`` package them and
the service load them from the Bento instead of the registry. retain itself goes in as a
wheel built from this checkout, with the runtime packages pinned to the versions here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from retain.errors import RetainError
from retain.models.pyfunc import pip_requirements
from retain.models.registry import CHURN_MODEL_NAME, VALUE_MODEL_NAME
from retain.serving.http.config import NO_AUTH
from retain.models.registry import champion_versions, display_uri, model_info, model_uri, version_label
from retain.settings import Settings

ENTRY_MODULE = '''"""Entry module of a retain Bento (written by retain build): the service, serving the
models imported into this Bento (retain_bento_models.json) instead of the registry's."""
import json
from pathlib import Path

from retain.serving.http import service

service.use_bento_models(json.loads((Path(__file__).parent / "retain_bento_models.json").read_text()))
Retain = service.Retain
'''


def import_champions(settings: Settings) -> dict:
    """Import both champions into the BentoML model store; {kind: {tag, version_label, info}}."""
    import bentoml
    from mlflow import MlflowClient

    versions = champion_versions(settings)  # also points MLflow at the store
    missing = [name for name, version in versions.items() if version is None]
    if missing:
        raise RetainError(f"{', '.join(missing)} has no champion in {display_uri(settings.resolved_tracking_uri)}: "
                          "train and promote one first (retain train / retain promote)")
    client = MlflowClient()
    entries = {}
    for kind, name in (("clv", VALUE_MODEL_NAME), ("churn", CHURN_MODEL_NAME)):
        version = versions[name]
        info = model_info(client, name, version)
        label = version_label(name, version)
        model = bentoml.mlflow.import_model(name, model_uri(name, version),
                                            labels={"registry_version": version},
                                            metadata={"version_label": label, "info": json.dumps(info)})
        entries[kind] = {"tag": str(model.tag), "version_label": label, "info": info}
    return entries


def _source_tree() -> Path | None:
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").exists() else None


def build_bento(settings: Settings, *, out: Path | None = None, progress=print, env: dict | None = None) -> str:
    """Import the champions, build the Bento; returns its tag (and exports it to ``out``)."""
    progress(f"importing the champion models from {display_uri(settings.resolved_tracking_uri)}")
    entries = import_champions(settings)
    with tempfile.TemporaryDirectory(prefix="retain-bento-") as folder:
        stage = Path(folder)
        (stage / "retain_bento.py").write_text(ENTRY_MODULE)
        (stage / "retain_bento_models.json").write_text(json.dumps(entries, indent=2))
        wheels = []
        source = _source_tree()
        if source is not None:
            progress("building retain's wheel")
            done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                                   "-w", str(stage / "wheels"), str(source)], capture_output=True, text=True)
            if done.returncode != 0:
                raise RetainError(f"could not build retain's wheel: {done.stderr.strip()[-500:]}")
            wheels = [f"./wheels/{p.name}" for p in (stage / "wheels").glob("*.whl")]
        packages = [*pip_requirements(), f"bentoml=={metadata.version('bentoml')}"]
        bentofile = {
            "service": "retain_bento:Retain",
            "include": ["retain_bento.py", "retain_bento_models.json"],
            "python": {"packages": packages, "wheels": wheels},
            "labels": {"clv": entries["clv"]["version_label"], "churn": entries["churn"]["version_label"]},
        }
        (stage / "bentofile.yaml").write_text(json.dumps(bentofile, indent=2))  # JSON is YAML
        progress("bentoml build")
        # importing the service needs no key: no request is served while building
        build_env = dict(env or {}, **{NO_AUTH: "1"})
        done = subprocess.run([sys.executable, "-m", "bentoml", "build", str(stage), "--output", "tag"],
                              capture_output=True, text=True, env=build_env, cwd=stage)
        if done.returncode != 0:
            raise RetainError(f"bentoml build failed: {(done.stderr or done.stdout).strip()[-1500:]}")
        tag = done.stdout.strip().splitlines()[-1].replace("__tag__:", "").strip()
        if out is not None:
            progress(f"exporting {tag} to {out}")
            done = subprocess.run([sys.executable, "-m", "bentoml", "export", tag, str(out)],
                                  capture_output=True, text=True, env=build_env)
            if done.returncode != 0:
                raise RetainError(f"bentoml export failed: {done.stderr.strip()[-500:]}")
    progress(f"built {tag}: serve it with `retain serve --bento {tag}` or `bentoml serve {tag}`")
    return tag


__all__ = ["build_bento", "import_champions"]
