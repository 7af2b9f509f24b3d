"""Build the models of the `runner:` examples on these pages, as `warden runs resume` would."""

import os
from pathlib import Path

import yaml

import warden
from warden.models.config import build_model
from warden.project import RunnerSettings

project = warden.load_project(".")
for path in sorted(Path(".").glob("runner_*.yaml")):
    settings = RunnerSettings.model_validate(yaml.safe_load(path.read_text())["runner"])
    built = []
    for spec in settings.models:
        if spec.api_key_env:
            os.environ.setdefault(spec.api_key_env, "not-a-real-key")  # nothing is sent
        model = build_model(spec, project)
        built.append(f"{model.provider} {model.name}")
        getattr(model, "close", lambda: None)()
    print(f"{path.name}: {', '.join(built)}")
