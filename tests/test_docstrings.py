"""Every public class, method and function documents exactly the parameters it takes."""

import importlib
import inspect

import pytest

docscrape = pytest.importorskip("numpydoc.docscrape")

MODULES = [
    "sklrec",
    "sklrec.base",
    "sklrec.callbacks",
    "sklrec.compose",
    "sklrec.datasets",
    "sklrec.metrics",
    "sklrec.model_selection",
    "sklrec.modules",
    "sklrec.optim",
    "sklrec.preprocessing",
    "sklrec.sampling",
]


def _public_objects():
    seen = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return seen


def _callables(obj):
    """``(name, docstring object, signature)`` of a function, or a class and its methods."""
    if inspect.isfunction(obj):
        yield "", docscrape.FunctionDoc(obj), inspect.signature(obj)
        return
    if obj.__init__ is not object.__init__:
        doc = docscrape.ClassDoc(obj, config={"show_inherited_class_members": False})
        yield "__init__", doc, inspect.signature(obj.__init__)
    for name in dir(obj):
        # skorch's callback hooks (on_epoch_end, ...) are documented by skorch
        if name.startswith(("_", "on_")):
            continue
        member = inspect.getattr_static(obj, name)
        member = getattr(member, "__func__", member)  # classmethod, staticmethod
        member = getattr(member, "fn", member)  # scikit-learn's available_if
        if inspect.isfunction(member) and member.__module__.startswith("sklrec"):
            yield name, docscrape.FunctionDoc(member), inspect.signature(member)


OBJECTS = _public_objects()


@pytest.mark.parametrize("qualname", sorted(OBJECTS))
def test_parameters_section_matches_the_signature(qualname):
    for name, doc, signature in _callables(OBJECTS[qualname]):
        where = f"{qualname}.{name}".rstrip(".")
        assert doc["Summary"], f"{where} has no summary line"
        taken = [
            p.name
            for p in signature.parameters.values()
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        documented = [n.strip() for p in doc["Parameters"] for n in p.name.split(",")]
        assert documented == taken, f"{where}: documents {documented}, takes {taken}"


def test_the_check_sees_every_estimator_and_their_methods():
    # the walk above must reach what users call, or the test passes vacuously
    names = {
        f"{qualname}.{name}" for qualname, obj in OBJECTS.items() for name, *_ in _callables(obj)
    }
    for expected in (
        "sklrec.neumf.NeuMFRecommender.__init__",
        "sklrec.neumf.NeuMFRecommender.fit",
        "sklrec.neumf.NeuMFRecommender.recommend",
        "sklrec.compose.RecencyWeighted.partial_fit",
        "sklrec.sampling.NegativeIndex.from_csr",
        "sklrec.metrics._evaluate.evaluate_ranking.",
    ):
        assert expected in names


@pytest.mark.parametrize("indent", ["    ", ""], ids=["as-written", "as-python-3.13-compiles-it"])
def test_shared_pieces_take_the_indent_of_the_docstring_they_fill(indent):
    # Python 3.13 strips a docstring's common indent when it compiles it: the shared
    # pieces must land at the docstring's own indent, or numpydoc (and help()) reads
    # every parameter after the first piece's first line as that line's description
    from sklrec._docs import fill_doc
    from sklrec.mf import DEFAULTS

    lines = [
        "Summary.",
        "",
        "Parameters",
        "----------",
        "embedding_dim : int",
        "    Factors.",
        "{implicit_params}",
        "{training_params}",
        "",
        "Attributes",
        "----------",
        "{attributes}",
    ]
    template = "\n".join(lines[:1] + [indent + line if line else line for line in lines[1:]])
    cls = fill_doc(**DEFAULTS)(type("Example", (), {"__doc__": template}))
    doc = docscrape.NumpyDocString(cls.__doc__)
    assert [p.name for p in doc["Parameters"]] == [
        "embedding_dim",
        "n_negatives",
        "positive_threshold",
        "handle_unknown",
        "lr",
        "max_epochs",
        "batch_size",
        "optimizer",
        "weight_decay",
        "lr_schedule",
        "early_stopping",
        "n_iter_no_change",
        "callbacks",
        "device",
        "verbose",
        "random_state",
    ]
    assert [p.name for p in doc["Attributes"]] == [
        "users_",
        "items_",
        "interactions_",
        "n_features_in_",
        "feature_names_in_",
    ]
    # the descriptions keep their own lines, one indent in
    assert doc["Parameters"][-1].desc[0].startswith("Seeds initialisation")
