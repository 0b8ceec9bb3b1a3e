"""Training quizzes, written as plain text in the module form and scored here.

The format, one line each, blank lines between questions::

    ? Which setting caps the connections SQLAlchemy opens beyond pool_size?
    - pool_timeout
    + max_overflow
    - pool_recycle
    > max_overflow: extra connections above pool_size, opened under load and closed after.

``?`` asks, ``+`` is a right choice, ``-`` a wrong one, ``>`` explains the
answer after the quiz is submitted. A question with several ``+`` choices is
answered right only when exactly those are chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class QuizError(ValueError):
    pass


@dataclass
class Choice:
    text: str
    correct: bool


@dataclass
class Question:
    number: int
    text: str
    choices: list[Choice] = field(default_factory=list)
    explanation: str = ""

    @property
    def multiple(self) -> bool:
        return sum(choice.correct for choice in self.choices) > 1

    def correct_numbers(self) -> set[int]:
        return {n for n, choice in enumerate(self.choices, 1) if choice.correct}


def parse(text: str) -> list[Question]:
    """The questions of a quiz; raises QuizError naming the line that is wrong."""
    questions: list[Question] = []
    for line_no, raw in enumerate((text or "").splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        marker, rest = line[0], line[1:].strip()
        if marker == "?":
            if not rest:
                raise QuizError(f"line {line_no}: the question has no text")
            questions.append(Question(number=len(questions) + 1, text=rest))
            continue
        if marker not in "+->":
            raise QuizError(
                f"line {line_no}: start the line with ? (question), + (right choice), "
                "- (wrong choice) or > (explanation)"
            )
        if not questions:
            raise QuizError(f"line {line_no}: write the question (a line starting with ?) first")
        question = questions[-1]
        if marker == ">":
            question.explanation = f"{question.explanation} {rest}".strip()
        elif not rest:
            raise QuizError(f"line {line_no}: the choice has no text")
        else:
            question.choices.append(Choice(text=rest, correct=marker == "+"))
    for question in questions:
        if len(question.choices) < 2:
            raise QuizError(f"question {question.number} needs at least two choices")
        if not question.correct_numbers():
            raise QuizError(f"question {question.number} has no right choice (a line with +)")
    return questions


@dataclass(frozen=True)
class Score:
    correct: int
    total: int
    percent: int
    passed: bool
    # {question number: True/False}
    verdicts: dict[int, bool]


def score(questions: list[Question], answers: dict[int, set[int]], pass_mark: int) -> Score:
    """Score ``answers`` ({question number: chosen choice numbers}) against the quiz."""
    verdicts = {q.number: answers.get(q.number, set()) == q.correct_numbers() for q in questions}
    correct = sum(verdicts.values())
    total = len(questions)
    # Rounded down, so 79.9 % never passes a mark of 80 %.
    percent = correct * 100 // total if total else 100
    return Score(correct, total, percent, percent >= pass_mark, verdicts)
