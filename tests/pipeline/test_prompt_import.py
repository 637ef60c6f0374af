"""Prompt import: formats, deduplication, the unsafe-word filter, and all-or-nothing errors."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotate.models import Prompt
from pipeline.services.prompt_import import MAX_PROMPT_CHARS, PromptImportError, prompts_import
from tests.factories import AdminFactory, CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db


def errors_of(data: bytes, filename: str, **kwargs) -> list[str]:
    with pytest.raises(PromptImportError) as caught:
        prompts_import(data=data, filename=filename, **kwargs)
    assert Prompt.objects.count() == 0, "a failed import must write nothing"
    return caught.value.errors


def parquet_bytes(columns: dict[str, list]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def test_csv_import_keeps_extra_columns_and_deduplicates_by_normalised_text():
    campaign = CampaignFactory()
    data = (
        b"prompt,source_id,style\n"
        b"a red  cat,c1,oil\n"
        b"\n"
        b"a red cat,c2,\n"  # the same prompt after whitespace normalisation
        b'"a dog, sitting",c3,photo\n'
    )
    result = prompts_import(data=data, filename="prompts.csv", campaign=campaign)
    assert (result.rows, result.created, result.duplicates_in_file) == (3, 2, 1)
    cat = Prompt.objects.get(text="a red cat")
    assert (cat.source, cat.source_id, cat.meta) == ("upload", "c1", {"style": "oil"})
    assert set(campaign.prompts.values_list("text", flat=True)) == {"a red cat", "a dog, sitting"}

    again = prompts_import(data=data, filename="prompts.csv", campaign=campaign)
    assert (again.created, again.existing) == (0, 2)
    assert Prompt.objects.count() == 2


def test_jsonl_and_text_imports():
    jsonl = b'{"prompt": "a castle at dusk", "tags": ["scene"], "seed": 3}\n\n{"prompt": "two owls"}\n'
    result = prompts_import(data=jsonl, filename="p.jsonl")
    assert result.created == 2
    castle = Prompt.objects.get(text="a castle at dusk")
    assert castle.tags == ["scene"] and castle.meta == {"seed": 3}

    text = "\ufeffa lighthouse\n\n   \ntwo owls\na tram in the rain\r\n".encode()
    result = prompts_import(data=text, filename="p.txt")
    assert (result.rows, result.created, result.existing) == (3, 2, 1)


def test_diffusiondb_parquet_keeps_generation_metadata():
    data = parquet_bytes(
        {
            "image_name": ["a.png", "b.png"],
            "prompt": ["a cyberpunk city", "a watercolour fox"],
            "seed": [1, 2],
            "step": [50, 30],
            "cfg": [7.0, 9.5],
            "sampler": ["k_lms", "k_euler"],
            "width": [512, 768],
            "height": [512, 512],
        }
    )
    result = prompts_import(data=data, filename="metadata.parquet")
    assert result.created == 2
    fox = Prompt.objects.get(text="a watercolour fox")
    assert (fox.source, fox.source_id) == ("diffusiondb", "b.png")
    assert fox.meta == {"seed": 2, "step": 30, "cfg": 9.5, "sampler": "k_euler", "width": 768, "height": 512}


def test_unsafe_words_are_flagged_or_skipped():
    data = b"a nude statue\na gory battle\na quiet garden\nsextant on a desk\n"
    result = prompts_import(data=data, filename="p.txt", unsafe="skip")
    assert (result.created, result.skipped_unsafe) == (2, 2)  # whole words only: "sextant" is fine
    result = prompts_import(data=data, filename="p.txt", unsafe="flag", unsafe_words=["statue"])
    assert result.flagged_unsafe == 1
    assert set(Prompt.objects.filter(is_unsafe=True).values_list("text", flat=True)) == {"a nude statue"}


def test_csv_errors_name_line_and_column_and_nothing_is_half_imported():
    long = "x" * (MAX_PROMPT_CHARS + 1)
    data = f"prompt,style\nfine,a\n,b\nok\n{long},c\nlast,d\n".encode()
    errors = errors_of(data, "bad.csv")
    assert errors == [
        "line 3, column 'prompt': empty",
        "line 4: 1 value, but the header has 2 columns",
        f"line 5, column 'prompt': {MAX_PROMPT_CHARS + 1:,} characters; the limit is {MAX_PROMPT_CHARS:,}",
    ]


def test_wrong_columns_bad_encoding_and_binary_files_are_refused_clearly():
    assert errors_of(b"text,style\na,b\n", "p.csv") == [
        "line 1: there is no 'prompt' column; the header has 'text', 'style'"
    ]
    [encoding] = errors_of("a café\nune tête\n".encode("latin-1"), "p.txt")
    assert encoding.startswith("line 1, byte 6: the file is not UTF-8 text (byte 0xe9)")
    [binary] = errors_of(b"ok\n\x00\x01", "p.txt")
    assert "NUL bytes" in binary and binary.startswith("line 2")


def test_jsonl_errors():
    data = b'{"prompt": "fine"}\n{"prompt": \n[1, 2]\n{"text": "x"}\n{"prompt": 5}\n{"prompt": "  "}\n'
    errors = errors_of(data, "p.jsonl")
    assert errors[0].startswith("line 2: not valid JSON")
    assert errors[1:] == [
        "line 3: expected a JSON object, got list",
        "line 4, field 'prompt': missing",
        "line 5, field 'prompt': expected text, got int",
        "line 6, field 'prompt': empty",
    ]


def test_bad_parquet_files():
    [broken] = errors_of(b"PAR1 this is not parquet", "m.parquet")
    assert broken.startswith("the file is not a readable parquet file")
    assert errors_of(parquet_bytes({"caption": ["a"]}), "m.parquet") == [
        "there is no 'prompt' column; the file has 'caption'"
    ]
    assert errors_of(parquet_bytes({"prompt": [1, 2]}), "m.parquet") == [
        "column 'prompt' holds int64, not text"
    ]
    assert errors_of(parquet_bytes({"prompt": ["ok", None]}), "m.parquet") == [
        "row 2, column 'prompt': empty"
    ]


def test_unknown_extension_and_empty_file():
    assert "cannot tell the format" in errors_of(b"a\n", "prompts.xlsx")[0]
    assert errors_of(b"\n\n", "p.txt") == ["the file holds no prompts"]


def test_management_command(tmp_path):
    campaign = CampaignFactory(slug="birds")
    good = tmp_path / "p.jsonl"
    good.write_text(json.dumps({"prompt": "a heron"}) + "\n")
    call_command("import_prompts", str(good), "--campaign", "birds")
    assert list(campaign.prompts.values_list("text", flat=True)) == ["a heron"]

    bad = tmp_path / "p.csv"
    bad.write_text("prompt,style\n,oil\n")
    with pytest.raises(CommandError, match=r"line 2, column 'prompt': empty"):
        call_command("import_prompts", str(bad))
    with pytest.raises(CommandError, match="no campaign"):
        call_command("import_prompts", str(good), "--campaign", "nope")


def test_admin_upload_page_shows_errors_and_imports(client):
    url = reverse("pipeline:prompt-import")
    client.force_login(UserFactory())
    assert client.get(url).status_code == 403
    client.force_login(AdminFactory())
    assert client.get(url).status_code == 200

    bad = io.BytesIO(b"prompt\nok\n\n" + b'"' + b"y" * 3000 + b'"\n')
    bad.name = "bad.csv"
    page = client.post(url, {"file": bad, "format": "", "unsafe": "flag"})
    assert page.status_code == 200
    assert "line 4, column &#x27;prompt&#x27;: 3,000 characters" in page.content.decode()
    assert Prompt.objects.count() == 0

    campaign = CampaignFactory()
    good = io.BytesIO(b"a heron\na crane\n")
    good.name = "good.txt"
    response = client.post(url, {"file": good, "format": "", "unsafe": "flag", "campaign": campaign.pk})
    assert response.status_code == 302
    assert campaign.prompts.count() == 2
