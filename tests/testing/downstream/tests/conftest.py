import pytest
import shop


@pytest.fixture(autouse=True)
def _fresh_shop() -> None:
    shop.reset()
