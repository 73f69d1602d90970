import matplotlib.pyplot as plt
import numpy as np
from skactiveml.pool import ExpectedModelChangeMaximization
from skactiveml.regressor import SklearnRegressor
from skactiveml.utils import MISSING_LABEL
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from eglpp.regression.skactiveml import ExpectedGradientLength, intercept_map

X, y_true = load_diabetes(return_X_y=True)


def learning_curve(qs, seed, n_initial=20, batch_size=5, n_cycles=10):
    """Test RMSE after each cycle of scikit-activeml's pool loop with query strategy `qs`."""
    X_pool, X_test, y_pool, y_test = train_test_split(X, y_true, test_size=0.25, random_state=seed)
    scaler = StandardScaler().fit(X_pool)
    X_pool, X_test = scaler.transform(X_pool), scaler.transform(X_test)
    y = np.full(len(y_pool), MISSING_LABEL)
    initial = np.random.RandomState(seed).choice(len(y_pool), n_initial, replace=False)
    y[initial] = y_pool[initial]
    reg = SklearnRegressor(Ridge(alpha=1e-3))
    rmse = []
    for cycle in range(n_cycles + 1):
        reg.fit(X_pool, y)
        rmse.append(np.sqrt(np.mean((reg.predict(X_test) - y_test) ** 2)))
        if cycle < n_cycles:
            query_idx = qs.query(X_pool, y, reg, fit_reg=False, batch_size=batch_size)
            y[query_idx] = y_pool[query_idx]
    return rmse


curves = {"EMC": [], "EGL": []}
for seed in range(5):
    same = {"bootstrap_size": 10, "feature_map": intercept_map, "random_state": seed}
    curves["EMC"].append(learning_curve(ExpectedModelChangeMaximization(**same), seed))
    curves["EGL"].append(learning_curve(ExpectedGradientLength(**same), seed))

n_labelled = 20 + 5 * np.arange(11)
for name, runs in curves.items():
    mean, std = np.mean(runs, axis=0), np.std(runs, axis=0)
    plt.plot(n_labelled, mean, marker="o", label=f"{name} (mean RMSE {mean.mean():.1f})")
    plt.fill_between(n_labelled, mean - std, mean + std, alpha=0.2)
plt.xlabel("labelled samples")
plt.ylabel("test RMSE (diabetes, 5 splits)")
plt.legend()
plt.savefig("skactiveml_egl_vs_emc.png", dpi=100)
