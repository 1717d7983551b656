from pathlib import Path

from django.conf import settings

from hashinsight.accounts.roles import Access, Module, Role, has_access, matrix_markdown


def test_readme_shows_the_matrix_the_code_enforces():
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    assert matrix_markdown() in readme


def test_seed_cells_of_the_matrix():
    class U:
        is_authenticated = True
        is_active = True

        def __init__(self, role):
            self.role = role

    assert has_access(None, Module.BASIC, Access.READ)  # the calculator is open to everyone
    assert not has_access(None, Module.BASIC, Access.FULL)
    assert has_access(U(Role.CLIENT), Module.HOSTING, Access.READ)
    assert not has_access(U(Role.CLIENT), Module.HOSTING, Access.FULL)
    assert not has_access(U(Role.MINING_SITE_OWNER), Module.USER, Access.READ)
    assert has_access(U(Role.MINING_SITE_OWNER), Module.SYSTEM, Access.READ)
    assert not has_access(U(Role.MINING_SITE_OWNER), Module.SYSTEM, Access.FULL)
    assert has_access(U(Role.MINING_SITE_OWNER), Module.CURTAILMENT, Access.FULL)
    assert not has_access(U(Role.CLIENT), Module.CURTAILMENT, Access.READ)
    inactive = U(Role.OWNER)
    inactive.is_active = False
    assert not has_access(inactive, Module.HOSTING, Access.READ)
