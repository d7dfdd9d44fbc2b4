"""The Jinja2 environment of generated code: string literals that stay literals, strict variables."""

from __future__ import annotations

import shutil
import subprocess

import jinja2
import pytest
from conftest import random_core

from rcsnn.digital import testbench
from rcsnn.digital.layout import build_image, place
from rcsnn.ir.arrays import FixedFormat
from rcsnn.ir.graph import Graph
from rcsnn.templates import ENVIRONMENT, c_string, render

#: Names that would break out of a string literal if pasted raw (the last is a C trigraph for "\").
CRAFTED = ['a"b', "back\\slash", "new\nline", '"); system("id"); //', 'x\\"); $finish; //', "tab\there",
           "%d %s %%", "bell\a\x7f", "ünï€", "??/", "??=define", "{{ oops }}"]

C_PROGRAM = """#include <stdio.h>
static const char *NAMES[] = {
{% for name in names %}
    {{ name | c_string }},
{% endfor %}
};
int main(void) {
    unsigned i;
    for (i = 0; i < sizeof NAMES / sizeof *NAMES; ++i) { fputs(NAMES[i], stdout); putchar('|'); }
    return 0;
}
"""

VERILOG_PROGRAM = """module t;
  initial begin
{% for name in names %}
    $write({{ name | c_string(printf=True) }});
    $write("|");
{% endfor %}
    $finish;
  end
endmodule
"""


def _expected(names: list[str]) -> bytes:
    return b"".join(n.encode() + b"|" for n in names)


@pytest.mark.parametrize("compiler", [["cc", "-std=c99", "-x", "c"], ["g++", "-std=c++17", "-x", "c++"]],
                         ids=["cc-c99-trigraphs", "g++"])
def test_c_string_stays_one_c_string(tmp_path, compiler):
    if shutil.which(compiler[0]) is None:
        pytest.skip(f"{compiler[0]} not installed")
    source = tmp_path / "names.c"
    source.write_text(ENVIRONMENT.from_string(C_PROGRAM).render(names=CRAFTED))
    exe = tmp_path / "names"
    subprocess.run([*compiler, str(source), "-o", str(exe)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True).stdout
    assert out == _expected(CRAFTED)  # one array element per name, each printed back exactly


def test_c_string_stays_one_verilog_string(tmp_path):
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        pytest.skip("Icarus Verilog not installed")
    (tmp_path / "t.v").write_text(ENVIRONMENT.from_string(VERILOG_PROGRAM).render(names=CRAFTED))
    subprocess.run(["iverilog", "-g2012", "-o", "t", "t.v"], cwd=tmp_path, check=True, capture_output=True)
    out = subprocess.run(["vvp", "-n", "t"], cwd=tmp_path, check=True, capture_output=True).stdout
    assert out.replace(b"\r\n", b"\n") == _expected(CRAFTED)  # $write format: % printed, not interpreted


def test_c_string_escapes():
    assert c_string("g0") == '"g0"'
    assert c_string('"); system("id"); //') == '"\\"); system(\\"id\\"); //"'
    assert c_string("a\\b\nc") == '"a\\\\b\\nc"'
    assert c_string("ab??=") == '"ab\\077\\077="'
    assert c_string("é") == '"\\303\\251"'
    assert c_string("5%") == '"5%"' and c_string("5%", printf=True) == '"5%%"'
    for literal in map(c_string, CRAFTED):  # only printable ASCII, one pair of unescaped quotes
        assert literal.isprintable() and literal.isascii()
        assert literal.replace('\\\\', "").replace('\\"', "").count('"') == 2
    with pytest.raises(ValueError):
        c_string("nul\0byte")
    with pytest.raises(TypeError):
        c_string(3)


def test_missing_variable_is_an_error():
    with pytest.raises(jinja2.UndefinedError):
        ENVIRONMENT.from_string("x = {{ x }};").render()
    with pytest.raises(jinja2.UndefinedError):
        render("rcsnn.digital", "rcsnn.gtkw.j2", x_width=4)  # spikes_width missing
    with pytest.raises(jinja2.UndefinedError):
        ENVIRONMENT.from_string("{{ group.base }}").render(group={})
    with pytest.raises(jinja2.TemplateNotFound):
        render("rcsnn.digital", "no_such_template.j2")


def _image(sizes=(3, 5), lanes=2):
    """The layout Image of a small random core: groups of ``sizes``, Wv = 12 (the benches also read its memories)."""
    core = random_core(0, sizes=sizes, resets=("zero",) * len(sizes), shared=False, fixed=FixedFormat(12, 6, 8))
    return build_image(place(Graph.from_arrays(core), lanes))


def test_benches_quote_group_names():
    evil = '"); system("id"); //\n'
    image = _image()
    harness = testbench.verilator_harness(image, [evil, "g1"])
    assert "static const char *GROUPS[] = {" + c_string(evil) + ', "g1"};\n' in harness
    assert 'system("id")' not in harness
    tb = testbench.verilog_testbench(image, [evil, "g1"])
    assert "        0: $write(" + c_string(evil, printf=True) + ");\n" in tb
    assert '        1: $write("g1");\n' in tb
    assert 'system("id")' not in tb
    assert "if (w >= 2) begin g = 1; b = 2; end else\n      if (w >= 0) begin g = 0; b = 0; end\n" in tb
    assert testbench.gtkwave_save(image).endswith("tb.x_payload[23:0]\ntb.spikes_payload[4:0]\n@24\ntb.cycles[31:0]\ntb.t\n")
