import pytest

from pipeline.generation.testing import BOS_TOKEN, EOS_TOKEN, clip_vocab_and_merges


@pytest.mark.parametrize("size", [1000, 49408])
def test_clip_vocabulary_has_exactly_the_requested_size(size):
    vocab, merges = clip_vocab_and_merges(size)
    assert len(vocab) == size
    assert sorted(vocab.values()) == list(range(size))
    # The real CLIP layout: the start and end tokens are the last two ids.
    assert (vocab[BOS_TOKEN], vocab[EOS_TOKEN]) == (size - 2, size - 1)
    for left, right in merges[:50] + merges[-50:]:
        assert left in vocab and right in vocab and left + right in vocab


def test_clip_vocabulary_too_small_is_rejected():
    with pytest.raises(ValueError, match="at least 514"):
        clip_vocab_and_merges(100)


def test_tiny_tokenizer_round_trips_text(tiny_sd_path):
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(f"{tiny_sd_path}/tokenizer")
    ids = tokenizer("three red circles above a blue square").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert max(ids) < 1000
    assert tokenizer.decode(ids, skip_special_tokens=True) == "three red circles above a blue square"
