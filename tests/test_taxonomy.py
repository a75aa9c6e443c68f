"""Taxonomies and mappings (casebench.taxonomy)."""

import numpy as np
import pytest

from casebench.errors import ConfigError, InputError
from casebench.taxonomy import get_taxonomy, list_taxonomies

EXPECTED = {  # the label lists issue 3 fixes, lower-case as given
    "ekman7": ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"],
    "msp8": ["angry", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise"],
    "iemocap4": ["angry", "happy", "neutral", "sad"],
    "crema6": ["angry", "disgust", "fear", "happy", "neutral", "sad"],
    "ravdess8": ["angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_label_lists(name):
    assert list(get_taxonomy(name).labels) == EXPECTED[name]


def test_plutchik32_keeps_em2ldl_order_and_spellings():
    # column order of EM2LDL labels/labels_distributions_Info.csv (see shared/CORPORA.md)
    header = ("ecstacy,joy,serenity,love,admiration,trust,acceptance,submission,terror,fear,apprehension,awe,"
              "amazement,surprise,distraction,disapproval,grief,sadness,pensiveness,remorse,loathing,disgust,"
              "boredom,contempt,rage,anger,annoyance,aggresiveness,vigilance,anticipation,interest,optimism")
    assert list(get_taxonomy("plutchik32").labels) == header.split(",")


@pytest.mark.parametrize("name", ["ekman7", "msp8", "iemocap4", "crema6", "ravdess8", "plutchik32"])
def test_every_mapping_is_total_and_lands_in_the_target(name):
    tax = get_taxonomy(name)
    assert set(list_taxonomies()) >= set(tax.mappings)
    for target, table in tax.mappings.items():
        assert set(table) == set(tax.labels)
        assert {v for v in table.values() if v is not None} <= set(get_taxonomy(target).labels)


def test_unmapped_labels_are_an_error_unless_dropped_with_a_count():
    rav = get_taxonomy("ravdess8")
    with pytest.raises(InputError, match="surprised"):
        rav.map_labels(["angry", "surprised"], "iemocap4")
    mapped = rav.map_labels(["angry", "surprised", "calm"], "iemocap4", drop_unmapped=True)
    assert mapped.labels == ["angry", None, "neutral"] and mapped.dropped == {"surprised": 1}


def test_unknown_label_gets_a_suggestion():
    with pytest.raises(InputError, match="did you mean 'angry'"):
        get_taxonomy("ekman7").encode(["angyr"])


def test_composed_mapping_through_ekman7():
    assert get_taxonomy("msp8").mapping_to("crema6")["contempt"] == "disgust"
    with pytest.raises(ConfigError, match="no mapping"):
        get_taxonomy("ravdess8").mapping_to("plutchik32")  # no mapping into the 32 petals exists


def test_map_distribution_sums_mass_and_renormalises():
    plu = get_taxonomy("plutchik32")
    d = np.zeros((1, 32))
    d[0, plu.index["rage"]], d[0, plu.index["anger"]], d[0, plu.index["trust"]] = 0.3, 0.3, 0.4
    out = plu.map_distribution(d, "ekman7", drop_unmapped=True)
    assert out[0, get_taxonomy("ekman7").index["angry"]] == pytest.approx(1.0)
    with pytest.raises(InputError):
        plu.map_distribution(d, "ekman7")


def test_unknown_taxonomy():
    with pytest.raises(ConfigError, match="did you mean 'ekman7'"):
        get_taxonomy("ekman")
