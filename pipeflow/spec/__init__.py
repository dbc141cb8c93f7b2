"""The spec layer: ``pipeline.yaml`` -> :class:`~pipeflow.spec.model.Pipeline`.

    loader.py       load_pipeline(): parse, validate, interpolate, expand, normalize
    yamlpos.py      YAML with node positions; SpecProblem (a path-located error)
    validate.py     pipeline.schema.json checks and their messages (jsonschema, lazily)
    interpolate.py  ${...} references and the variables they see
    templates.py    foreach / matrix expansion and the names it gives
    normalize.py    one stage body -> Stage (paths, outs, params keys)
    paths.py        root-relative POSIX paths; refusing those outside the project
    model.py        the frozen values the rest of pipeflow uses

Nothing is imported here, so that ``pipeflow.spec.model`` stays cheap to import.
"""
