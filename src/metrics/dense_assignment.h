// Minimum-cost assignment on a dense cost matrix given as a function (private to the metrics
// module): the Hungarian method with row and column potentials. Rows are added one at a time and a
// shortest augmenting path in reduced costs extends the matching, as scipy's
// linear_sum_assignment does (rows <= columns; scipy transposes otherwise). O(rows^2 * cols) in the
// worst case; when most rows' cheapest column is free it is close to O(rows * cols).
#pragma once

#include <algorithm>
#include <limits>
#include <vector>

namespace nucleisam::metrics::detail {

// cost(r, c) for r < rows, c < cols, rows <= cols. Returns the column of every row.
template <typename Cost>
std::vector<int> assign_rows(int rows, int cols, const Cost& cost) {
  const double inf = std::numeric_limits<double>::infinity();
  // 1-based with column 0 as the virtual start of each augmenting path.
  std::vector<double> row_pot(rows + 1, 0.0), col_pot(cols + 1, 0.0), slack(cols + 1);
  std::vector<int> row_of_col(cols + 1, 0), previous_col(cols + 1, 0);
  std::vector<char> visited(cols + 1);
  for (int r = 1; r <= rows; ++r) {
    row_of_col[0] = r;
    int col = 0;
    std::fill(slack.begin(), slack.end(), inf);
    std::fill(visited.begin(), visited.end(), 0);
    do {
      visited[col] = 1;
      const int row = row_of_col[col];
      double delta = inf;
      int next = 0;
      for (int j = 1; j <= cols; ++j) {
        if (visited[j]) continue;
        const double reduced = cost(row - 1, j - 1) - row_pot[row] - col_pot[j];
        if (reduced < slack[j]) {
          slack[j] = reduced;
          previous_col[j] = col;
        }
        if (slack[j] < delta) {
          delta = slack[j];
          next = j;
        }
      }
      for (int j = 0; j <= cols; ++j) {
        if (visited[j]) {
          row_pot[row_of_col[j]] += delta;
          col_pot[j] -= delta;
        } else {
          slack[j] -= delta;
        }
      }
      col = next;
    } while (row_of_col[col] != 0);
    // Flip the augmenting path back to its start.
    do {
      const int prev = previous_col[col];
      row_of_col[col] = row_of_col[prev];
      col = prev;
    } while (col != 0);
  }
  std::vector<int> col_of_row(rows, -1);
  for (int j = 1; j <= cols; ++j)
    if (row_of_col[j] != 0) col_of_row[row_of_col[j] - 1] = j - 1;
  return col_of_row;
}

}  // namespace nucleisam::metrics::detail
