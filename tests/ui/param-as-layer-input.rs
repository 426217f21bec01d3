bp::network! {
    struct Net {
        input x: [4];
        param w: [4] = zeros;
        let h = linear(w, 3) + x;
        output h;
    }
}

fn main() {}
