"""The study's figures stay readable: every remedy its own colour and marker (one hue per family),
and AP against darkness as one panel per family with `none` and the reference in each."""
import colorsys

from torch_utils_lib.plots import charts

# the study's rows and families (study/remedies.py), as a report names them
FAMILIES = {"none": "baseline", "finetune": "fine-tuning", "finetune_mixed": "fine-tuning",
            "diffusion": "restoration", "gamma": "classical", "clahe": "classical",
            "histeq": "classical", "zero_dce": "learned", "enhancer": "learned",
            "enhancer_joint": "learned", "genisp": "RAW",
            "normal-light pair (reference)": "baseline"}


def fake_curve(p, levels, width=0.05):
    """A report.json darkness entry: P, AP per level, and their intervals."""
    return {"P": p, "levels": {str(ev): ap for ev, ap in levels.items()},
            "P_ci": [p - width, p + width],
            "levels_ci": {str(ev): [max(0.0, ap - width), ap + width] for ev, ap in levels.items()}}


def hue(color):
    return colorsys.rgb_to_hls(*color[:3])[0]


def hue_distance(a, b):
    """Distance of two colours' hues on the colour circle (red sits at both ends)."""
    d = abs(hue(a) - hue(b))
    return min(d, 1 - d)


def test_every_series_has_its_own_colour_and_marker_and_a_family_one_hue():
    names = list(FAMILIES)
    styles = charts.series_styles(names, FAMILIES, baseline="none")
    assert styles["none"] == charts.BASELINE_STYLE
    colours = [tuple(styles[n]["color"]) for n in names if n != "none"]
    assert len(set(colours)) == len(colours)
    markers = [styles[n]["marker"] for n in names]
    assert len(set(markers)) == len(markers)  # 12 series, 12 markers: none repeats
    hued = [n for n in names if FAMILIES[n] != "baseline"]
    for a in hued:
        for b in hued:
            same = FAMILIES[a] == FAMILIES[b]
            distance = hue_distance(styles[a]["color"], styles[b]["color"])
            assert distance < 1e-6 if same else distance > 0.05, (a, b)
    # the reference shares none's family: grey, not a hue
    assert len(set(styles["normal-light pair (reference)"]["color"])) == 1


def captured_figure(monkeypatch):
    figures = []
    monkeypatch.setattr(charts, "save_figure", lambda fig, path: figures.append(fig) or path)
    return figures


def test_darkness_curves_are_small_multiples_with_none_and_the_reference_in_each(monkeypatch,
                                                                                  tmp_path):
    curves = {"none": fake_curve(0.40, {2: 0.2, 5: 0.05, 8: 0.0}),
              "finetune": fake_curve(0.33, {2: 0.3, 5: 0.1, 8: 0.02}),
              "gamma": fake_curve(0.40, {2: 0.25, 5: 0.1, 8: 0.01}),
              "clahe": fake_curve(0.40, {2: 0.22, 5: 0.04, 8: 0.0}),
              "zero_dce": fake_curve(0.40, {2: 0.3, 5: 0.15, 8: 0.05})}
    figures = captured_figure(monkeypatch)
    charts.plot_darkness_curves(curves, str(tmp_path / "d.png"), families=FAMILIES)
    panels = [ax for ax in figures[0].axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["fine-tuning", "classical", "learned"]
    for ax, members in zip(panels, (["finetune"], ["gamma", "clahe"], ["zero_dce"])):
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ["none", "normal-light pair (reference)", *members]
        reference = ax.get_lines()[1]
        assert list(reference.get_ydata()) == [0.40, 0.40]  # none's P: the normal-light pair
        assert list(ax.get_lines()[0].get_xdata()) == [0.0, 2.0, 5.0, 8.0]
        assert len(ax.collections) == 1 + len(members)  # a band per curve (none's included)
    assert panels[0].get_ylim() == panels[2].get_ylim()  # shared axes: panels compare


def test_darkness_curves_without_families_draw_one_panel(tmp_path):
    path = charts.plot_darkness_curves({"none": fake_curve(0.4, {2: 0.2}),
                                        "other": fake_curve(0.3, {2: 0.25})},
                                       str(tmp_path / "one.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_bars_take_each_remedy_s_colour(monkeypatch, tmp_path):
    values = {"normal": {"none": 0.4, "finetune": 0.3, "normal-light pair (reference)": 0.4},
              "gamma_noise": {"none": 0.15, "finetune": 0.33, "gamma": 0.14, "genisp": 0.17}}
    figures = captured_figure(monkeypatch)
    charts.plot_bars(values, str(tmp_path / "b.png"), families=FAMILIES, baseline="none",
                     intervals={"normal": {"none": [0.35, 0.45]}})
    ax = figures[0].axes[0]
    styles = charts.series_styles(["none", "finetune", "normal-light pair (reference)", "gamma",
                                   "genisp"], FAMILIES, baseline="none")
    bars = {}
    for patch in ax.patches:
        bars.setdefault(patch.get_facecolor()[:3], []).append(patch.get_height())
    assert bars[(0.0, 0.0, 0.0)] == [0.4, 0.15]  # none, black, in both groups
    assert bars[tuple(styles["finetune"]["color"][:3])] == [0.3, 0.33]
    assert len(bars) == 5 and len(ax.patches) == 7  # no bar where a remedy was not scored
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["none", "finetune", "normal-light pair (reference)", "gamma", "genisp"]
    assert bars[tuple(styles["genisp"]["color"][:3])] == [0.17]
    markers = [line for line in ax.get_lines() if line.get_label() == "genisp"]
    assert list(markers[0].get_ydata()) == [0.17]  # its marker sits on its one bar
