import pytest

from scaling.data.table import TableIndex
from scaling.errors import ConfigError
from tests.scaling.data.conftest import SHARD_CAPTIONS


def test_rows_in_file_order_with_relative_paths_resolved(table):
    index = TableIndex(str(table), "data.path")
    assert len(index) == 6 and [index.caption(i) for i in range(6)] == SHARD_CAPTIONS
    assert index.images[2] == table.parent / "images" / "2.png"
    assert index.image_bytes(2).startswith(b"\x89PNG")


def test_comma_separated_with_extra_columns_and_absolute_paths(table, tmp_path):
    csv = tmp_path / "other" / "comma.csv"
    csv.parent.mkdir()
    csv.write_text(f'id,title,filepath\n1,"a red one, really",{table.parent / "images" / "0.png"}\n')
    index = TableIndex(str(csv), "data.path")
    assert index.caption(0) == "a red one, really"
    assert index.image_bytes(0).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "content, message",
    [
        ("path\tcaption\nx.png\thello\n", "lacks column.s. filepath, title .found: path, caption."),
        ("filepath\ttitle\n", "has no rows"),
        ("", "cannot read CSV"),
    ],
)
def test_bad_tables_name_the_field(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ConfigError, match=rf"^data\.path: .*{message}"):
        TableIndex(str(path), "data.path")


def test_missing_csv_and_missing_image_name_the_field(table, tmp_path):
    with pytest.raises(ConfigError, match=r"^data\.path: cannot read CSV"):
        TableIndex(str(tmp_path / "nope.csv"), "data.path")
    (table.parent / "images" / "4.png").unlink()
    with pytest.raises(ConfigError, match=r"^data\.path: cannot read image of row 4"):
        TableIndex(str(table), "data.path").image_bytes(4)
