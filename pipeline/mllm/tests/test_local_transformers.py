"""The local transformers judge, end to end, on a tiny random LLaVA built from config objects.

Nothing is downloaded: the tokenizer is a character-level vocabulary built with ``tokenizers``, the image
processor is constructed from its class, and the model from configs; all are saved with
``save_pretrained`` and loaded back through the judge's real ``from_pretrained`` path. The random model
writes gibberish, so the call ends on the parse-failure path — which is what this test exercises.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from PIL import Image

from pipeline.mllm import CallRequest, ImageEncoding, RequestImage, encode_image, iter_batch
from pipeline.mllm.providers.local_transformers import (
    LocalModelConfig,
    LocalTransformersJudge,
    hf_messages,
    load_model,
)

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: "
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for p in m['content'] %}{% if p['type'] == 'text' %}{{ p['text'] }}{% else %}<image>{% endif %}{% endfor %}"
    "{% endif %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
)


def build_tiny_llava(path: Path) -> None:
    """Save a random 2-layer LLaVA (CLIP vision tower + Llama text model) and its processor to ``path``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    vocab = {token: i for i, token in enumerate(specials + [c for c in string.printable])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")  # one token per character
    tokenizer.decoder = decoders.Fuse()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    image_processor_class = getattr(transformers, "CLIPImageProcessorPil", transformers.CLIPImageProcessor)
    image_processor = image_processor_class(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = transformers.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=fast,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    vision = transformers.CLIPVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    text = transformers.LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=16384,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    )
    config = transformers.LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=vocab["<image>"],
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    transformers.LlavaForConditionalGeneration(config).save_pretrained(path)
    processor.save_pretrained(path)


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-llava")
    build_tiny_llava(path)
    return path


def test_tiny_vlm_runs_end_to_end_and_fails_to_parse(tiny_llava):
    judge = LocalTransformersJudge(LocalModelConfig(model=str(tiny_llava), max_new_tokens=12))
    requests = [
        CallRequest(
            key=str(i),
            prompt="a red square",
            images=(
                RequestImage("a", source=Image.new("RGB", (64, 48), (200, 0, 0))),
                RequestImage("b", source=Image.new("RGB", (48, 64), (0, 0, 200))),
            ),
            image_encoding=ImageEncoding(max_side=48),
        )
        for i in range(2)
    ]
    results = list(iter_batch(requests, judge, concurrency=2))

    assert len(results) == 2
    for result in results:
        assert result.provider == "transformers" and result.model == str(tiny_llava)
        assert result.status == "parse_error"
        # 12 random tokens never close a JSON object: either cut at the limit or stopped early on EOS.
        assert result.error.reason in {"truncated", "invalid_json", "empty"}
        assert isinstance(result.raw_text, str)
        assert result.prompt_tokens > 1000  # the whole rendered prompt, character by character, plus images
        assert 1 <= result.completion_tokens <= 12
        assert result.attempts == 1 and not result.structured

    processor, model = load_model(judge.config)
    assert load_model(judge.config)[1] is model  # loaded once, cached
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    # The processor expanded one <image> per picture into its patch tokens: 16 per 32x32 image.
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    messages = requests[0].with_encoded_images()
    converted, images = hf_messages(messages)
    text = processor.apply_chat_template(converted, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=images, return_tensors="pt")
    assert int((inputs["input_ids"] == image_id).sum()) == 2 * 16


def test_judge_sync_is_usable_without_an_event_loop(tiny_llava):
    judge = LocalTransformersJudge(LocalModelConfig(model=str(tiny_llava), max_new_tokens=4))
    image = encode_image(Image.new("RGB", (40, 40), (0, 200, 0)), max_side=40)
    result = judge.judge_sync(
        CallRequest(key="s", prompt="green", images=(RequestImage("a", image), RequestImage("b", image)))
    )
    assert result.status == "parse_error" and result.completion_tokens <= 4
