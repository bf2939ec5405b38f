"""Path (Saabas, [Saabas2014]) attributions of a LightGBM multiclass model from one ``pred_leaf``
pass: raw class scores and per-feature contributions per customer, without TreeSHAP's
([LEL2018]) cost."""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np


@dataclass
class TreeTables:
    """Per tree and leaf: the leaf value and the path attribution of that leaf ([Saabas2014]:
    the change of the node value at each split on the way down, credited to the split's
    feature). Summed over a customer's leaves they give the raw class scores, and the
    per-feature contributions, from one ``pred_leaf`` traversal."""

    tree_class: np.ndarray  # (trees,)
    leaf_value: np.ndarray  # (trees, max_leaves)
    # per tree: the features it splits on, and their contribution at each leaf (features x leaves)
    contribution_tables: list[tuple[np.ndarray, np.ndarray]]

    @classmethod
    def from_booster(cls, booster: lgb.Booster, rounds: int) -> "TreeTables":
        dump = booster.dump_model(num_iteration=rounds)
        trees = dump["tree_info"]
        max_leaves = max(tree["num_leaves"] for tree in trees)
        leaf_value = np.zeros((len(trees), max_leaves))
        tables = []
        for t, tree in enumerate(trees):
            credit: dict[tuple[int, int], float] = {}  # (feature, leaf) -> summed change

            def walk(node, parent_value, split_feature, trail):
                value = node["leaf_value"] if "leaf_value" in node else node["internal_value"]
                if split_feature is not None:
                    trail = trail + [(split_feature, value - parent_value)]
                if "leaf_value" in node:
                    leaf = node.get("leaf_index", 0)
                    leaf_value[t, leaf] = value
                    for feature, change in trail:
                        credit[feature, leaf] = credit.get((feature, leaf), 0.0) + change
                    return
                for child in ("left_child", "right_child"):
                    walk(node[child], value, node["split_feature"], trail)

            # the root value is the tree's bias: part of the score, credited to no feature
            root = tree["tree_structure"]
            walk(root, root.get("internal_value", root.get("leaf_value", 0.0)), None, [])
            features = np.array(sorted({feature for feature, _ in credit}), dtype=np.int64)
            table = np.zeros((len(features), max_leaves))
            for (feature, leaf), change in credit.items():
                table[np.searchsorted(features, feature), leaf] = change
            tables.append((features, table))
        classes = dump["num_tree_per_iteration"]
        return cls(np.arange(len(trees)) % classes, leaf_value, tables)

    def raw_scores(self, leaves: np.ndarray, n_classes: int) -> np.ndarray:
        per_tree = self.leaf_value[np.arange(leaves.shape[1]), leaves]
        # trees come iteration by iteration, one per class within each iteration
        return per_tree.reshape(len(leaves), leaves.shape[1] // n_classes, n_classes).sum(axis=1)

    def contributions(self, leaves: np.ndarray, toward: np.ndarray, against: int, n_features: int) -> np.ndarray:
        """Per row, the feature contributions to (class ``toward[row]`` score - class
        ``against`` score), accumulated tree by tree over the few features each tree uses."""
        out = np.zeros((n_features, len(leaves)))  # features first: each tree adds whole rows
        by_tree = np.ascontiguousarray(leaves.T)
        for k in np.unique(toward):
            rows = np.flatnonzero(toward == k)
            part = np.zeros((n_features, len(rows)))
            for cls, sign in ((k, 1.0), (against, -1.0)):
                for tree in np.flatnonzero(self.tree_class == cls):
                    features, table = self.contribution_tables[tree]
                    if len(features):
                        part[features] += sign * table[:, by_tree[tree, rows]]
            out[:, rows] = part
        return out.T


