"""A question of punctuation alone is refused at the door (422 on `question`), instead of
reaching the generator and coming back as a 502 from external-api-service (schemathesis
found `{"question": "=("}`)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stack.gateway.models import QuestionIn


@pytest.mark.parametrize("text", ["=(", "?!", " -- ", "..."])
def test_punctuation_alone_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        QuestionIn(question=text)
    err = info.value.errors()[0]
    assert err["loc"] == ("question",) and "at least one word" in err["msg"]


@pytest.mark.parametrize("text", ["errors?", "p95 of /checkout", "5xx"])
def test_a_word_is_enough(text: str) -> None:
    assert QuestionIn(question=f"  {text} ").question == text
