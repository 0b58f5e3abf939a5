"""Isaac Lab's cart-pole without network access, for the tests and benchmarks that run it.

Isaac Lab's task assets live on a remote content server. The wheel ships golden test stages that
contain the cart-pole, from which a stand-alone USD is copied here; the ground plane (also
remote) is left out by the callers (``env_cfg.scene.ground = None``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["build_cartpole_usd", "offline_cartpole_cfg"]


def build_cartpole_usd(path: Path) -> None:
    """Writes a stand-alone cart-pole USD, copied out of the golden stage the wheel ships."""
    import isaaclab
    from pxr import Sdf

    root = Path(isaaclab.__file__).parent / "source/isaaclab_tasks/test/golden_stages"
    src = Sdf.Layer.FindOrOpen(
        str(
            root / "registered_tasks_Isaac-Cartpole-Camera-Direct"
            "/default_physics-default_renderer-stage.usda"
        )
    )
    if src is None:
        raise FileNotFoundError(f"no cart-pole golden stage under {root}")
    dst = Sdf.Layer.CreateNew(str(path))
    dst.ImportFromString(
        '#usda 1.0\n(\n defaultPrim = "Robot"\n metersPerUnit = 1\n upAxis = "Z"\n'
        " kilogramsPerUnit = 1\n)\n"
    )
    # The robot references instancing prototypes that the flattened stage keeps at the root.
    for spec in src.rootPrims:
        if spec.name.startswith("Flattened_Prototype"):
            Sdf.CreatePrimInLayer(dst, spec.path)
            Sdf.CopySpec(src, spec.path, dst, spec.path)
    Sdf.CreatePrimInLayer(dst, "/Robot")
    Sdf.CopySpec(src, "/World/envs/env_0/Robot", dst, "/Robot")
    dst.GetPrimAtPath("/Robot").specifier = Sdf.SpecifierDef
    translate = dst.GetAttributeAtPath("/Robot.xformOp:translate")
    if translate:
        translate.default = (0.0, 0.0, 0.0)  # the spawner places the robot
    dst.Save()


def offline_cartpole_cfg(
    usd_dir: Path, *, num_envs: int, device: str = "cpu", physics: str = "newton_mjwarp"
):
    """Isaac-Cartpole's env config with the cart-pole from :func:`build_cartpole_usd` and no
    ground plane: runs without network access."""
    from isaaclab_tasks.utils import parse_env_cfg

    usd = Path(usd_dir) / "cartpole.usda"
    if not usd.exists():
        build_cartpole_usd(usd)
    env_cfg = parse_env_cfg(
        "Isaac-Cartpole", device=device, num_envs=num_envs, overrides=[f"physics={physics}"]
    )
    env_cfg.scene.robot.spawn.usd_path = str(usd)
    env_cfg.scene.ground = None
    return env_cfg
