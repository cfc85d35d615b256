"""The five support policies of ../shared/seeds, as policy TOML files."""
